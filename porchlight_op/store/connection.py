"""Redis connection lifecycle: the client pool and the embedded development server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypeAlias

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisClusterException, RedisError

from porchlight_op import log
from porchlight_op.settings import Settings, redact_url
from porchlight_op.store.embedded import EmbeddedRedis
from porchlight_op.store.multiplex import MultiplexedRedis

__all__ = ["RedisClient", "RedisUnavailableError", "make_redis", "redis_client"]

# Either client runs every command the stores send. Multi-key commands and Lua
# scripts only name keys that share one hash tag, so they stay in one cluster slot.
RedisClient: TypeAlias = redis.asyncio.Redis | RedisCluster

logger = logging.getLogger(log.STORE)

HEALTH_CHECK_INTERVAL = 30  # seconds a pooled connection may idle before a PING
# One quick retry covers a server restart; more would only delay the error response.
RETRIES = 1
RETRY_BACKOFF_CAP = 0.5  # seconds
RETRY_BACKOFF_BASE = 0.05  # seconds
# The cluster client refreshes its slot map before each retry, so a few retries
# let a request follow a resharding or a replica promotion that has just finished.
CLUSTER_RETRIES = 3


class RedisUnavailableError(RuntimeError):
    """Redis did not reply to PING when the client was opened."""


def make_redis(url: str, settings: Settings) -> RedisClient:
    """Return a pooled client for url with the timeouts and pool size from settings.

    The client is a RedisCluster when settings.redis_cluster is true.
    """
    if settings.redis_cluster:
        return _make_cluster(url, settings)
    retry = Retry(ExponentialBackoff(RETRY_BACKOFF_CAP, RETRY_BACKOFF_BASE), RETRIES)
    # A full pool makes a request wait for a free connection (up to the socket
    # timeout) instead of failing at once, so bursts above the pool size queue.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL,
    )
    # Plain commands share one connection per worker (store/multiplex.py); the
    # pool serves the few that need a connection to themselves.
    client: redis.asyncio.Redis = MultiplexedRedis(
        connection_pool=pool,
        timeout=settings.redis_socket_timeout,
        decode_responses=False,
        retry=retry,
    )
    return client


def _make_cluster(url: str, settings: Settings) -> RedisCluster:
    # redis-py 8.2 defaults to 10 retries with up to 1 s between them; fewer keep
    # a request from hanging while the cluster is down. max_connections limits
    # each node's pool here, not the whole process.
    retry = Retry(
        ExponentialBackoff(RETRY_BACKOFF_CAP, RETRY_BACKOFF_BASE), CLUSTER_RETRIES
    )
    cluster: RedisCluster = RedisCluster.from_url(
        url,
        retry=retry,
        decode_responses=False,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        max_connections=settings.redis_max_connections,
        health_check_interval=HEALTH_CHECK_INTERVAL,
    )
    return cluster


async def _check_reachable(client: RedisClient, url: str) -> None:
    try:
        await client.ping()
    # RedisClusterException is not a RedisError. The cluster client raises it when
    # no node is reachable or some hash slots have no node.
    except (RedisError, RedisClusterException, OSError) as err:
        raise RedisUnavailableError(
            f"cannot reach Redis at {redact_url(url)}: {err}"
        ) from err


@contextlib.asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[RedisClient]:
    """Open a checked client for settings.redis_url, or for the embedded server.

    Without redis_url, the embedded server in settings.data_dir is adopted when it
    is running, else started here and stopped on exit. Raises RedisUnavailableError
    when Redis does not reply to PING, and EmbeddedRedisError when the embedded
    server cannot start.
    """
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        fresh = not embedded.data_dir.exists()
        await asyncio.to_thread(embedded.start)
        url = embedded.url
        if fresh:
            # A command run from another directory than the server's writes to
            # a database the server never reads, so say so.
            logger.warning(
                "created a new, empty embedded Redis database in %s; if the server"
                " runs from another directory, run this there or set"
                " PORCHLIGHT_DATA_DIR",
                embedded.data_dir,
            )
        logger.warning(
            "embedded Redis at %s is for development only; "
            "set redis_url for production",
            embedded.socket_path,
        )

    client = make_redis(url, settings)
    try:
        await _check_reachable(client, url)
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
