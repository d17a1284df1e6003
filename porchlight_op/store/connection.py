"""Redis connection lifecycle: the client pool and the embedded development server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from porchlight_op import log
from porchlight_op.settings import Settings, redact_url
from porchlight_op.store.embedded import EmbeddedRedis

__all__ = ["RedisUnavailableError", "make_redis", "redis_client"]

logger = logging.getLogger(log.STORE)

HEALTH_CHECK_INTERVAL = 30  # seconds a pooled connection may idle before a PING
# One quick retry covers a server restart; more would only delay the error response.
RETRIES = 1
RETRY_BACKOFF_CAP = 0.5  # seconds
RETRY_BACKOFF_BASE = 0.05  # seconds


class RedisUnavailableError(RuntimeError):
    """Redis did not reply to PING when the client was opened."""


def make_redis(url: str, settings: Settings) -> redis.asyncio.Redis:
    """Return a pooled client for url with the timeouts and pool size from settings."""
    retry = Retry(ExponentialBackoff(RETRY_BACKOFF_CAP, RETRY_BACKOFF_BASE), RETRIES)
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        max_connections=settings.redis_max_connections,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=retry,
    )
    return client


async def _check_reachable(client: redis.asyncio.Redis, url: str) -> None:
    try:
        await client.ping()
    except (RedisError, OSError) as err:
        raise RedisUnavailableError(
            f"cannot reach Redis at {redact_url(url)}: {err}"
        ) from err


@contextlib.asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[redis.asyncio.Redis]:
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
        await asyncio.to_thread(embedded.start)
        url = embedded.url
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
