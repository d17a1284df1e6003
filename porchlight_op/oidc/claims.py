"""User claims: an async cache in Redis, read synchronously by idpyoidc.

idpyoidc calls its userinfo source synchronously; the bridge loads the claims
of the request's user into a context variable first, from the shared cache in
Redis or, on a miss, from the user store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .. import fastjson
from ..models import User
from ..store import keys
from ..store.connection import RedisClient
from .context import prefetched_claims

ClaimsLoader = Callable[[str], Awaitable[dict[str, Any] | None]]


class ClaimsNotLoaded(KeyError):
    """idpyoidc asked for the claims of a user the bridge did not prefetch."""


class PrefetchedUserInfo:
    """The userinfo source configured in idpyoidc; reads prefetched claims only."""

    def __init__(self, **_: Any) -> None:
        pass

    def __call__(self, user_id: str, client_id: str, **_: Any) -> dict[str, Any]:
        try:
            return dict(prefetched_claims.get()[user_id])
        except LookupError:
            raise ClaimsNotLoaded(user_id) from None


class ClaimsCache:
    """Claims per user in Redis, shared by every worker, filled on a miss."""

    def __init__(self, client: RedisClient, load: ClaimsLoader, ttl: int) -> None:
        self._redis = client
        self._load = load
        self._ttl = ttl

    async def get(self, sub: str) -> dict[str, Any] | None:
        """Return the user's claims (including `sub`), or None for no such user."""
        return await self.get_read(sub, await self._redis.get(keys.claims(sub)))

    async def get_read(
        self, sub: str, cached: bytes | str | None
    ) -> dict[str, Any] | None:
        """Return the user's claims from the claims key's value, read by the caller."""
        if cached is not None:
            claims: dict[str, Any] = fastjson.loads(cached)
            return claims
        loaded = await self._load(sub)
        if loaded is None:
            return None
        await self._redis.set(keys.claims(sub), fastjson.dumps(loaded), ex=self._ttl)
        return loaded

    async def invalidate(self, sub: str) -> None:
        """Drop the cached claims so the next read loads them afresh."""
        await self._redis.delete(keys.claims(sub))


def user_claims(user: User) -> dict[str, Any]:
    """Return a user's standard claims (OIDC Core 5.1) for idpyoidc to filter."""
    claims: dict[str, Any] = {"sub": user.sub, "updated_at": user.updated_at}
    claims["preferred_username"] = user.username
    claims.update(user.claims)
    return claims
