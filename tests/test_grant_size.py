"""What one grant costs in Redis, and that refreshing does not grow it."""

from __future__ import annotations

from support import query_of

from porchlight_op.store.sessions import read_nodes

GRANT_PATTERN = "pl:{*}:s:g:*"
LIMIT = 4096  # bytes per live grant with one access and one refresh token


async def _grant_memory(redis) -> int:
    (key,) = await redis.keys(GRANT_PATTERN)
    return int(await redis.memory_usage(key))


async def test_grant_stays_small_across_refreshes(op, browser):
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    token = await rp.redeem(reply.headers["Location"])
    first = await _grant_memory(op.redis)

    sizes = []
    for _ in range(10):
        token = await rp.refresh(token["refresh_token"])
        sizes.append(await _grant_memory(op.redis))

    assert "code" in query_of(reply.headers["Location"])
    assert first < LIMIT
    assert max(sizes) < LIMIT
    assert max(sizes) - min(sizes) < 256


async def test_login_state_stays_under_limit(op, browser):
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    before = set(await op.redis.keys("*"))
    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    token = await rp.redeem(reply.headers["Location"])
    await rp.refresh(token["refresh_token"])

    # Every key the sign-in added: session nodes and their sets, the login
    # session, the consent and the browser session.
    added = [key for key in await op.redis.keys("*") if key not in before]
    memory = [int(await op.redis.memory_usage(key, samples=0)) for key in added]

    assert any(b":s:g:" in key for key in added)
    assert sum(memory) < LIMIT


async def test_tokens_are_not_stored_in_redis(op, browser):
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    code = query_of(reply.headers["Location"])["code"]
    token = await rp.redeem(reply.headers["Location"])

    keys = [
        key.decode()
        for key in await op.redis.keys("pl:*:s:*")
        if await op.redis.type(key) != b"set"
    ]
    stored = await read_nodes(op.redis, keys)
    dump = b"".join(node.data or b"" for node in stored)

    for value in (code, token["access_token"], token["refresh_token"]):
        assert value.encode() not in dump
