"""Every key expires with what it holds; nothing needs a sweeper."""

from __future__ import annotations

import asyncio
import time

from conftest import OP, TEST_ARGON2
from support import Browser, free_port, query_of

from porchlight_op.app import create_app
from porchlight_op.settings import load_settings

SHORT = {
    "code_lifetime": 2,
    "access_token_lifetime": 2,
    "id_token_lifetime": 2,
    "refresh_token_lifetime": 3,
    "pending_request_lifetime": 2,
    "claims_cache_ttl": 2,
    "consent_lifetime": 3,
    "session_idle_timeout": 3,
    "session_max_age": 3,
}


async def _short_lived_op(redis, aiohttp_server) -> OP:
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "issuer": f"http://127.0.0.1:{port}",
            "port": port,
            **TEST_ARGON2,
            **SHORT,
        },
    )
    server = await aiohttp_server(create_app(settings, redis), port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, redis)


async def _wait_for_size(redis, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    size = await redis.dbsize()
    while size != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        size = await redis.dbsize()
    return size


async def test_state_expires_back_to_baseline(redis, aiohttp_server):
    op = await _short_lived_op(redis, aiohttp_server)
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    baseline = await redis.dbsize()
    browser = Browser.open(op.url)

    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    token = await rp.redeem(reply.headers["Location"])
    refreshed = await rp.refresh(token["refresh_token"])
    assert (await rp.userinfo(refreshed["access_token"])).status_code == 200
    await browser.close()
    grown = await redis.dbsize()

    size = await _wait_for_size(redis, baseline, timeout=12)

    assert grown > baseline
    assert size == baseline, sorted(await redis.keys("*"))


async def test_unredeemed_code_expires_with_its_grant(redis, aiohttp_server):
    op = await _short_lived_op(redis, aiohttp_server)
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    baseline = await redis.dbsize()
    browser = Browser.open(op.url)

    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    await browser.close()
    grant_keys = await redis.keys("pl:{*}:s:g:*")
    ttls = [await redis.ttl(key) for key in grant_keys]
    size = await _wait_for_size(redis, baseline, timeout=10)

    assert "code" in query_of(reply.headers["Location"])
    assert len(grant_keys) == 1
    assert all(0 < ttl <= SHORT["code_lifetime"] + 3 for ttl in ttls)
    assert size == baseline
