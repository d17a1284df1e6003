"""Redis going away: quick 503 responses, then recovery without a restart."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import OP, TEST_ARGON2
from redis_process import RedisProcess
from support import Browser, free_port

from porchlight_op.app import create_app
from porchlight_op.settings import load_settings
from porchlight_op.store.connection import make_redis


@pytest.fixture
def own_redis():
    directory = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    server = RedisProcess(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fragile_op(own_redis, aiohttp_server):
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={"issuer": f"http://127.0.0.1:{port}", "port": port, **TEST_ARGON2},
    )
    client = make_redis(own_redis.url, settings)
    server = await aiohttp_server(create_app(settings, client), port=port)
    yield OP(str(server.make_url("")).rstrip("/"), settings, client)
    await client.aclose()


async def _signed_in_tokens(op: OP) -> dict:
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    browser = Browser.open(op.url)
    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    await browser.close()
    return await rp.redeem(reply.headers["Location"])


async def _first_success(
    http: httpx.AsyncClient, path: str, headers: dict, attempts: int = 20
) -> httpx.Response:
    """GET until a 200 or `attempts` tries, 0.1 s apart; return the last reply."""
    reply = await http.get(path, headers=headers)
    for _ in range(attempts - 1):
        if reply.status_code == 200:
            break
        await asyncio.sleep(0.1)
        reply = await http.get(path, headers=headers)
    return reply


async def test_redis_down_gives_quick_503_then_recovers(fragile_op, own_redis):
    token = await _signed_in_tokens(fragile_op)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    base = fragile_op.url

    own_redis.kill()
    async with httpx.AsyncClient(base_url=base) as http:
        started = time.monotonic()
        userinfo = await http.get("/userinfo", headers=bearer)
        elapsed = time.monotonic() - started
        ready = await http.get("/health/ready")
        live = await http.get("/health/live")
        page = await http.get("/authorization", params={"client_id": "rp"})

        own_redis.start()
        # Pooled connections broken by the restart fail once each before the
        # pool reconnects, so recovery may take a few requests, never a restart.
        recovered = await _first_success(http, "/userinfo", bearer)
        ready_again = await http.get("/health/ready")

    assert userinfo.status_code == 503
    assert userinfo.json()["error"] == "temporarily_unavailable"
    assert elapsed < 2.0
    assert ready.status_code == 503
    assert live.status_code == 200
    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in page.text
    assert recovered.status_code == 200
    assert ready_again.status_code == 200


async def test_cors_during_outage_gets_503(fragile_op, own_redis):
    token = await _signed_in_tokens(fragile_op)
    headers = {
        "Authorization": f"Bearer {token['access_token']}",
        "Origin": "https://spa.example",
    }

    own_redis.kill()
    async with httpx.AsyncClient(base_url=fragile_op.url) as http:
        reply = await http.get("/userinfo", headers=headers)
        preflight = await http.options("/token", headers=headers)

    assert reply.status_code == 503
    assert reply.json()["error"] == "temporarily_unavailable"
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert preflight.status_code == 503
    assert "X-Request-ID" in reply.headers
