"""Kill Redis with SIGKILL under load, start it again, and count what happened.

Two OP processes serve a stream of code flows while Redis dies and comes back
on the same socket with its append-only file. No request may get a 500, and
every token response that was sent must still work afterwards.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from redis_process import RedisProcess
from support import REDIRECT_URI, Browser, RelyingParty, basic_auth, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import Client
from porchlight_op.settings import load_settings
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.connection import make_redis

SECRET = "restart-secret"
LOAD_SECONDS = 6.0
KILL_AFTER = 1.5
DOWN_FOR = 1.0
WORKERS = 4

pytestmark = pytest.mark.slow


@pytest.fixture
def durable_redis():
    directory = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    server = RedisProcess(directory)
    server.start()
    yield server
    server.stop()


async def _provision(url: str) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "argon2_time_cost": 1,
            "argon2_memory_cost": 1024,
            "argon2_parallelism": 1,
        },
    )
    client = make_redis(url, settings)
    await ClientStore(client).put(
        Client(
            client_id="rp",
            redirect_uris=(REDIRECT_URI,),
            auth_method="client_secret_basic",
            secret=SECRET,
            scope=("openid", "profile", "offline_access"),
        )
    )
    await Accounts(client, settings).create_user("loader", "correct horse battery")
    await client.aclose()


async def _one_flow(
    rp: RelyingParty, browser: Browser, base: str, counts: Counter[str], done: list
) -> None:
    reply = await browser.get(rp.authorization_url().replace(rp.issuer, base))
    counts[f"authorization {reply.status}"] += 1
    if reply.status != 302:
        return
    code = query_of(reply.headers["Location"]).get("code")
    if code is None:
        return
    async with httpx.AsyncClient(base_url=base) as http:
        token = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": rp.verifier or "",
            },
            headers={"Authorization": basic_auth("rp", SECRET)},
        )
    counts[f"token {token.status_code}"] += 1
    if token.status_code == 200:
        done.append(token.json()["access_token"])


async def _load(rp, browser, servers, counts, done, stop_at) -> None:
    turn = 0
    while time.monotonic() < stop_at:
        try:
            await _one_flow(rp, browser, servers[turn % len(servers)].url, counts, done)
        except httpx.HTTPError as exc:
            counts[f"transport {type(exc).__name__}"] += 1
        turn += 1


async def test_redis_killed_and_restarted_under_load(durable_redis, start_server):
    await _provision(durable_redis.url)
    first = start_server(durable_redis.url, wait=False)
    second = start_server(durable_redis.url, issuer=first.issuer, wait=False)
    servers = [first.wait_ready(), second.wait_ready()]
    rp = RelyingParty(first.issuer, "rp", SECRET, "client_secret_basic")
    await rp.discover()
    browsers = [Browser.open(first.url) for _ in range(WORKERS)]
    for browser in browsers:
        reply = await browser.authorize(
            rp.authorization_url(), "loader", "correct horse battery"
        )
        assert reply.status == 302
    counts: Counter[str] = Counter()
    done: list[str] = []

    stop_at = time.monotonic() + LOAD_SECONDS
    load = asyncio.gather(
        *(_load(rp, b, servers, counts, done, stop_at) for b in browsers)
    )
    await asyncio.sleep(KILL_AFTER)
    durable_redis.kill()
    await asyncio.sleep(DOWN_FOR)
    durable_redis.start()
    await load

    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient() as http:
        for access in done:
            reply = await http.get(
                servers[0].url + "/userinfo",
                headers={"Authorization": f"Bearer {access}"},
            )
            statuses[reply.status_code] += 1
    for browser in browsers:
        await browser.close()

    assert not any(" 5" in key and "503" not in key for key in counts), counts
    assert counts["authorization 503"] + counts["token 503"] > 0, counts
    assert counts["token 200"] > 0, counts
    assert statuses == Counter({200: len(done)}), statuses
