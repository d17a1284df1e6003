"""The scopes each user has granted each client (OIDC Core 3.1.2.4)."""

from __future__ import annotations

from collections.abc import Iterable

from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient


class ConsentStore:
    """Stores granted scopes as a Redis set per user and client.

    The set expires `lifetime` seconds after the last scope was added, and the
    user is then asked again.
    """

    def __init__(self, redis: RedisClient, lifetime: int) -> None:
        if lifetime <= 0:
            raise ValueError(f"invalid lifetime {lifetime}: must be positive seconds")
        self._redis = redis
        self._lifetime = lifetime

    async def granted(self, sub: str, client_id: str) -> frozenset[str]:
        """Return the scopes the user has granted the client so far."""
        members = await self._redis.smembers(keys.consent(sub, client_id))
        return frozenset(_text(member) for member in members)

    async def grant(self, sub: str, client_id: str, scopes: Iterable[str]) -> None:
        """Add scopes to the user's consent and renew its lifetime."""
        scope_list = list(scopes)
        if not scope_list:
            return
        key = keys.consent(sub, client_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, *scope_list)
            pipe.expire(key, self._lifetime)
            await pipe.execute()

    async def revoke(self, sub: str, client_id: str) -> None:
        """Forget everything the user granted the client."""
        await self._redis.delete(keys.consent(sub, client_id))


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
