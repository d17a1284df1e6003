"""Authorization requests parked while the user logs in."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

# token_urlsafe(32) gives 43 characters from the base64url alphabet.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


class PendingRequests:
    """Stores request parameters under a random id until they expire or are taken."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def put(self, params: dict[str, Any], ttl: int) -> str:
        """Store JSON-serializable params for ttl seconds and return their new id."""
        if ttl <= 0:
            raise ValueError(f"invalid ttl {ttl}: must be a positive number of seconds")
        request_id = secrets.token_urlsafe(32)
        await self._redis.set(keys.pending(request_id), json.dumps(params), ex=ttl)
        return request_id

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """Return the params, or None when the id is unknown, expired or malformed."""
        if not REQUEST_ID_PATTERN.fullmatch(request_id):
            return None
        raw = await self._redis.get(keys.pending(request_id))
        return None if raw is None else _load(raw)

    async def take(self, request_id: str) -> dict[str, Any] | None:
        """Return the params and delete them atomically (GETDEL, Redis 6.2 or later).

        Of two concurrent calls with the same id, only one receives the params.
        """
        if not REQUEST_ID_PATTERN.fullmatch(request_id):
            return None
        raw = await self._redis.getdel(keys.pending(request_id))
        return None if raw is None else _load(raw)


def _load(raw: bytes | str) -> dict[str, Any]:
    params = json.loads(raw)
    if not isinstance(params, dict):
        raise TypeError("stored pending request is not a JSON object")
    return params
