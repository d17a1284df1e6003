"""The compact storage of session nodes, and nodes written in the old layout."""

from __future__ import annotations

import json

import pytest
from redis.exceptions import ResponseError
from support import query_of

from porchlight_op.store import node_codec
from porchlight_op.store.sessions import read_nodes

PASSWORD = "correct horse battery"
GRANT_PATTERN = "pl:{*}:s:g:*"
NODE_PATTERNS = ("pl:{*}:s:u", "pl:{*}:s:c:*", GRANT_PATTERN)


async def _sign_in(op, browser):
    """Register a client and a user, sign in, and return (rp, redirect location)."""
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    return rp, reply.headers["Location"]


async def _node_keys(redis, pattern: str) -> list[str]:
    found = [key.decode() for key in await redis.keys(pattern)]
    return [key for key in found if await redis.type(key) != b"set"]


async def _grant_key(redis) -> str:
    (key,) = await _node_keys(redis, GRANT_PATTERN)
    return key


async def _store_in_old_layout(redis, key: str) -> None:
    """Rewrite a node as the hash of plain json.dumps text written before."""
    (node,) = await read_nodes(redis, [key])
    ttl = await redis.ttl(key)
    text = json.dumps(json.loads(node.data), sort_keys=True)
    await redis.delete(key)
    await redis.hset(key, mapping={"v": node.version, "d": text})
    await redis.expire(key, ttl)


async def test_codec_round_trip_is_exact(op, browser):
    rp, location = await _sign_in(op, browser)
    await rp.redeem(location)
    keys = []
    for pattern in NODE_PATTERNS:
        keys += await _node_keys(op.redis, pattern)
    documents = [node.data for node in await read_nodes(op.redis, keys)]

    assert len(documents) == 3
    for document in documents:
        assert node_codec.decode(node_codec.encode(document)) == document


def test_codec_reads_plain_json():
    document = b'{"id": "rp", "revoked": false}'

    assert node_codec.decode(document) == document


def test_codec_reads_earlier_deflate_nodes():
    document = b'{"extra_args":{},"id":"alice","revoked":false,"type":"x"}'

    packed = node_codec.deflate_encode(document)

    assert packed[:1] == node_codec.MARKER_1
    assert node_codec.decode(packed) == document


def test_codec_writes_lz4_nodes():
    document = b'{"extra_args":{},"id":"alice","revoked":false,"type":"x"}'

    assert node_codec.encode(document)[:1] == node_codec.MARKER_2


def test_codec_rejects_oversized_length_header():
    header = (node_codec.MAX_NODE_BYTES + 1).to_bytes(4, "little")

    with pytest.raises(node_codec.UnknownNodeFormat):
        node_codec.decode(node_codec.MARKER_2 + header + b"\x00")


def test_codec_rejects_unknown_marker():
    with pytest.raises(node_codec.UnknownNodeFormat):
        node_codec.decode(b"\x7fnot a node")


def test_codec_rejects_truncated_node():
    packed = node_codec.encode(b'{"extra_args":{},"id":"alice","revoked":false}')

    with pytest.raises(node_codec.UnknownNodeFormat):
        node_codec.decode(packed[:-2])


async def test_stored_grant_is_smaller_than_json(op, browser):
    rp, location = await _sign_in(op, browser)
    await rp.redeem(location)
    key = await _grant_key(op.redis)

    raw = await op.redis.get(key)
    (node,) = await read_nodes(op.redis, [key])
    memory = await op.redis.memory_usage(key, samples=0)

    assert node.data.startswith(b"{")
    assert len(raw) < len(node.data) / 3
    assert memory < len(node.data) / 2


async def test_old_layout_grant_still_redeems(op, browser):
    rp, location = await _sign_in(op, browser)
    key = await _grant_key(op.redis)
    await _store_in_old_layout(op.redis, key)

    token = await rp.redeem(location)

    assert "code" in query_of(location)
    assert "refresh_token" in token
    assert await op.redis.type(key) == b"string"


async def test_old_layout_grant_still_refreshes(op, browser):
    rp, location = await _sign_in(op, browser)
    token = await rp.redeem(location)
    key = await _grant_key(op.redis)
    await _store_in_old_layout(op.redis, key)

    refreshed = await rp.refresh(token["refresh_token"])
    reply = await rp.userinfo(refreshed["access_token"])

    assert refreshed["refresh_token"] != token["refresh_token"]
    assert reply.status_code == 200
    assert reply.json()["email"] == "alice@example.org"


async def test_old_layout_grant_serves_userinfo(op, browser):
    rp, location = await _sign_in(op, browser)
    token = await rp.redeem(location)
    await _store_in_old_layout(op.redis, await _grant_key(op.redis))

    reply = await rp.userinfo(token["access_token"])

    assert reply.status_code == 200
    assert reply.json()["email"] == "alice@example.org"


async def test_old_layout_parents_take_new_grant(op, browser):
    rp, location = await _sign_in(op, browser)
    await rp.redeem(location)
    parents = await _node_keys(op.redis, NODE_PATTERNS[0])
    parents += await _node_keys(op.redis, NODE_PATTERNS[1])
    for key in parents:
        await _store_in_old_layout(op.redis, key)

    again = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    token = await rp.redeem(again.headers["Location"])
    stored = await read_nodes(op.redis, parents)

    assert len(parents) == 2
    assert "access_token" in token
    assert len(await _node_keys(op.redis, GRANT_PATTERN)) == 2
    for key, node in zip(parents, stored, strict=True):
        assert node.version > 0
        assert await op.redis.ttl(key) > 0


async def test_read_nodes_follows_hash_rewritten_as_string(op, browser):
    rp, location = await _sign_in(op, browser)
    await rp.redeem(location)
    key = await _grant_key(op.redis)
    (expected,) = await read_nodes(op.redis, [key])
    # This is what a GET returns for a hash of the old layout. The key is a
    # string by the time HMGET reads it, as after a concurrent commit.
    stale = ResponseError("WRONGTYPE Operation against a key holding the wrong kind")

    (node,) = await read_nodes(op.redis, [key], [stale])

    assert node == expected
