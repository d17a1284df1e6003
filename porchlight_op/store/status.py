"""What is in Redis, by kind of key, for `porchlight-op status`."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis

from . import keys

# Patterns per kind; SCAN walks the keyspace in batches without blocking Redis.
KINDS = {
    "users": keys.user("*"),
    "clients": keys.client("*"),
    "secrets": keys.secret("*"),
    "pending_requests": keys.pending("*"),
    "claims_cache": keys.claims("*"),
    "grants": keys.session_prefix("*") + "g:*",
}
SCAN_BATCH = 1000


async def collect_status(client: redis.Redis, cookie_name: str) -> dict[str, Any]:
    """Reachability, round-trip time, key counts per kind and memory use."""
    started = time.perf_counter()
    await client.ping()
    round_trip_ms = (time.perf_counter() - started) * 1000

    counts = {kind: await _count(client, pattern) for kind, pattern in KINDS.items()}
    counts["browser_sessions"] = await _count(client, f"{cookie_name}_*")
    memory = await client.info("memory")
    server = await client.info("server")
    return {
        "redis": "reachable",
        "redis_version": server.get("redis_version"),
        "round_trip_ms": round(round_trip_ms, 2),
        "keys_total": await client.dbsize(),
        "keys": counts,
        "used_memory_bytes": memory.get("used_memory"),
        "used_memory_human": memory.get("used_memory_human"),
    }


async def _count(client: redis.Redis, pattern: str) -> int:
    total = 0
    async for _ in client.scan_iter(match=pattern, count=SCAN_BATCH):
        total += 1
    return total
