"""Key counts per kind and memory use of Redis, for `porchlight-op status`."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from . import keys
from .connection import RedisClient

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


async def collect_status(client: RedisClient, cookie_name: str) -> dict[str, Any]:
    """Reachability, round-trip time, key counts per kind and memory use.

    On a Redis Cluster, keys_total and the memory use are sums over the primaries.
    """
    started = time.perf_counter()
    await client.ping()
    round_trip_ms = (time.perf_counter() - started) * 1000

    counts = {kind: await _count(client, pattern) for kind, pattern in KINDS.items()}
    counts["browser_sessions"] = await _count(client, f"{cookie_name}_*")
    if isinstance(client, RedisCluster):
        totals = await _cluster_totals(client)
    else:
        totals = await _server_totals(client)
    return {
        "redis": "reachable",
        "redis_version": totals["redis_version"],
        "round_trip_ms": round(round_trip_ms, 2),
        "keys_total": totals["keys_total"],
        "keys": counts,
        "used_memory_bytes": totals["used_memory_bytes"],
        "used_memory_human": totals["used_memory_human"],
    }


async def _server_totals(client: redis.Redis) -> dict[str, Any]:
    memory = await client.info("memory")
    server = await client.info("server")
    return {
        "redis_version": server.get("redis_version"),
        "keys_total": await client.dbsize(),
        "used_memory_bytes": memory.get("used_memory"),
        "used_memory_human": memory.get("used_memory_human"),
    }


async def _cluster_totals(client: RedisCluster) -> dict[str, Any]:
    """Sum DBSIZE and used memory over the primaries.

    Without target_nodes, the cluster client sends DBSIZE and INFO to one node.
    """
    keys_total = 0
    used_memory = 0
    versions: set[str] = set()
    for node in client.get_primaries():
        keys_total += await client.dbsize(target_nodes=node)
        memory = await client.info("memory", target_nodes=node)
        server = await client.info("server", target_nodes=node)
        used_memory += int(memory.get("used_memory", 0))
        versions.add(str(server.get("redis_version")))
    return {
        "redis_version": ", ".join(sorted(versions)),
        "keys_total": keys_total,
        "used_memory_bytes": used_memory,
        "used_memory_human": _human_bytes(used_memory),
    }


def _human_bytes(size: int) -> str:
    """Format a byte count as INFO's used_memory_human does, such as 1.52M."""
    if size < 1024:
        return f"{size}B"
    value = size / 1024
    for unit in ("K", "M", "G"):
        if value < 1024:
            return f"{value:.2f}{unit}"
        value /= 1024
    return f"{value:.2f}T"


async def _count(client: RedisClient, pattern: str) -> int:
    total = 0
    async for _ in client.scan_iter(match=pattern, count=SCAN_BATCH):
        total += 1
    return total
