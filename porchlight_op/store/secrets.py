"""Server secrets shared by every worker, created once in Redis."""

from __future__ import annotations

import logging
from collections.abc import Callable

from porchlight_op import log
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(log.STORE)


class SecretStore:
    """Stores named secret values that never change once written."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def get(self, name: str) -> bytes | None:
        """Return the secret, or None when it was never created."""
        value = await self._redis.get(keys.secret(name))
        return None if value is None else _bytes(value)

    async def get_or_create(self, name: str, factory: Callable[[], bytes]) -> bytes:
        """Return the stored secret, storing factory() first when there is none.

        SET NX followed by GET makes concurrent first starts agree on one value,
        because the caller that loses the race reads the value that won.
        """
        existing = await self.get(name)
        if existing is not None:
            return existing
        created = await self._redis.set(keys.secret(name), factory(), nx=True)
        if created:
            logger.info("server secret created: name=%s", name)
        stored = await self.get(name)
        if stored is None:
            raise RuntimeError(f"server secret {name!r} vanished right after SET NX")
        return stored


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
