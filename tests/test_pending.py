"""Tests for PendingRequests against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from porchlight_op.store import keys
from porchlight_op.store.pending import PendingRequests

PARAMS = {"client_id": "webapp", "scope": "openid email", "nonce": "n-0S6_WzA2Mj"}


@pytest.fixture
def pending(redis: aioredis.Redis) -> PendingRequests:
    return PendingRequests(redis)


async def test_put_then_get(pending: PendingRequests) -> None:
    request_id = await pending.put(PARAMS, ttl=60)

    assert await pending.get(request_id) == PARAMS
    assert await pending.get(request_id) == PARAMS


async def test_put_sets_ttl(pending: PendingRequests, redis: aioredis.Redis) -> None:
    request_id = await pending.put(PARAMS, ttl=60)

    assert 0 < await redis.ttl(keys.pending(request_id)) <= 60


async def test_put_returns_fresh_ids(pending: PendingRequests) -> None:
    first = await pending.put(PARAMS, ttl=60)
    second = await pending.put(PARAMS, ttl=60)

    assert first != second
    assert len(first) == 43


@pytest.mark.parametrize("ttl", [0, -5])
async def test_put_rejects_non_positive_ttl(pending: PendingRequests, ttl: int) -> None:
    with pytest.raises(ValueError, match="invalid ttl"):
        await pending.put(PARAMS, ttl=ttl)


async def test_take_returns_once(pending: PendingRequests) -> None:
    request_id = await pending.put(PARAMS, ttl=60)

    assert await pending.take(request_id) == PARAMS
    assert await pending.take(request_id) is None
    assert await pending.get(request_id) is None


async def test_concurrent_take_has_one_winner(
    pending: PendingRequests, redis_server: str
) -> None:
    request_id = await pending.put(PARAMS, ttl=60)
    clients = [aioredis.from_url(redis_server) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(PendingRequests(client).take(request_id) for client in clients)
        )
    finally:
        for client in clients:
            await client.aclose()

    assert results.count(PARAMS) == 1
    assert results.count(None) == 4


async def test_unknown_id_returns_none(pending: PendingRequests) -> None:
    unknown = "A" * 43

    assert await pending.get(unknown) is None
    assert await pending.take(unknown) is None


@pytest.mark.parametrize("request_id", ["", "short", "x" * 44, "a" * 42 + "*"])
async def test_malformed_id_returns_none(
    pending: PendingRequests, redis: aioredis.Redis, request_id: str
) -> None:
    await redis.set(keys.pending(request_id), "{}")

    assert await pending.get(request_id) is None
    assert await pending.take(request_id) is None


async def test_expired_request_is_gone(
    pending: PendingRequests, redis: aioredis.Redis
) -> None:
    request_id = await pending.put(PARAMS, ttl=60)
    await redis.pexpire(keys.pending(request_id), 1)
    await asyncio.sleep(0.05)

    assert await pending.get(request_id) is None
