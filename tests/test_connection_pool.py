"""More concurrent requests than pooled Redis connections must queue, not fail."""

from __future__ import annotations

import asyncio

from porchlight_op.settings import load_settings
from porchlight_op.store.connection import make_redis


async def test_full_pool_waits_for_a_connection(redis_server):
    settings = load_settings(environ={}, overrides={"redis_max_connections": 2})
    client = make_redis(redis_server, settings)

    replies = await asyncio.gather(*(client.ping() for _ in range(40)))
    await client.aclose()

    assert all(replies)
