"""Tests for SecretStore against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from porchlight_op.store import keys
from porchlight_op.store.secrets import SecretStore


def constant(value: bytes) -> Callable[[], bytes]:
    return lambda: value


@pytest.fixture
def store(redis: aioredis.Redis) -> SecretStore:
    return SecretStore(redis)


async def test_get_or_create_stores_factory_value(
    store: SecretStore, redis: aioredis.Redis
) -> None:
    value = await store.get_or_create("code-key", lambda: b"\x00\xffkey")

    assert value == b"\x00\xffkey"
    assert await redis.get(keys.secret("code-key")) == b"\x00\xffkey"


async def test_get_or_create_keeps_first_value(store: SecretStore) -> None:
    calls = []

    def factory() -> bytes:
        calls.append(1)
        return b"second"

    await store.get_or_create("code-key", lambda: b"first")
    value = await store.get_or_create("code-key", factory)

    assert value == b"first"
    assert calls == []


async def test_concurrent_creates_agree(redis_server: str) -> None:
    clients = [aioredis.from_url(redis_server) for _ in range(5)]
    try:
        await clients[0].delete(keys.secret("race"))
        stores = [SecretStore(client) for client in clients]

        values = await asyncio.gather(
            *(
                store.get_or_create("race", constant(f"value-{n}".encode()))
                for n, store in enumerate(stores)
            )
        )
    finally:
        for client in clients:
            await client.aclose()

    assert len(set(values)) == 1


async def test_get_missing_returns_none(store: SecretStore) -> None:
    assert await store.get("never-created") is None


async def test_get_returns_bytes(store: SecretStore) -> None:
    await store.get_or_create("symkey", lambda: b"abc")

    assert await store.get("symkey") == b"abc"
