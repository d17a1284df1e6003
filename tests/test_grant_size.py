"""What one grant costs in Redis, and that refreshing does not grow it."""

from __future__ import annotations

from support import query_of

from porchlight_op.store import node_codec

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
        key
        for key in await op.redis.keys("pl:*:s:*")
        if await op.redis.type(key) == b"hash"
    ]
    stored = [await op.redis.hget(key, "d") for key in keys]
    dump = b"".join(node_codec.decode(value) for value in stored if value)

    for value in (code, token["access_token"], token["refresh_token"]):
        assert value.encode() not in dump
