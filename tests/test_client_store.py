"""Tests for ClientStore against a real Redis."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis

from porchlight_op.models import Client
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore


def make_client(client_id: str = "webapp") -> Client:
    return Client(
        client_id=client_id,
        redirect_uris=("https://rp.example.org/callback",),
        auth_method="client_secret_basic",
        secret="s3cret-value",
        scope=("openid", "profile"),
        name="Web app",
        created_at=1_700_000_000,
    )


@pytest.fixture
def store(redis: aioredis.Redis) -> ClientStore:
    return ClientStore(redis)


async def test_put_then_get(store: ClientStore) -> None:
    client = make_client()

    await store.put(client)

    assert await store.get("webapp") == client


async def test_put_writes_index(store: ClientStore, redis: aioredis.Redis) -> None:
    await store.put(make_client())

    assert await redis.smembers(keys.clients_index()) == {b"webapp"}
    assert await redis.exists("pl:client:webapp") == 1


async def test_put_replaces(store: ClientStore) -> None:
    await store.put(make_client())
    changed = dataclasses.replace(make_client(), name="Renamed")

    await store.put(changed)

    assert await store.get("webapp") == changed
    assert len(await store.list()) == 1


async def test_public_client_round_trip(store: ClientStore) -> None:
    client = Client(
        client_id="spa",
        redirect_uris=("http://127.0.0.1:5173/cb", "https://spa.example.org/cb"),
        auth_method="none",
        secret=None,
        scope=("openid",),
    )

    await store.put(client)
    loaded = await store.get("spa")

    assert loaded == client
    assert loaded is not None
    assert loaded.is_public


async def test_get_missing_returns_none(store: ClientStore) -> None:
    assert await store.get("unknown") is None


async def test_list_sorted_by_client_id(store: ClientStore) -> None:
    for client_id in ("zeta", "alpha", "mid"):
        await store.put(make_client(client_id))

    client_ids = [client.client_id for client in await store.list()]

    assert client_ids == ["alpha", "mid", "zeta"]


async def test_list_skips_missing_records(
    store: ClientStore, redis: aioredis.Redis
) -> None:
    await store.put(make_client())
    await redis.sadd(keys.clients_index(), "ghost")

    assert [client.client_id for client in await store.list()] == ["webapp"]


async def test_remove(store: ClientStore, redis: aioredis.Redis) -> None:
    await store.put(make_client())

    assert await store.remove("webapp") is True

    assert await store.get("webapp") is None
    assert await redis.smembers(keys.clients_index()) == set()


async def test_remove_missing_returns_false(store: ClientStore) -> None:
    assert await store.remove("unknown") is False
