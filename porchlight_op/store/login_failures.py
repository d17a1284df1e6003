"""Counters of failed logins per username and per client address, shared by workers."""

from __future__ import annotations

from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

# Counts one failure. The first failure starts the window; the failure that
# reaches the limit replaces the window with the lockout, once. Returns the
# count and the remaining TTL in seconds.
_RECORD = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
if count == tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {count, redis.call('TTL', KEYS[1])}
"""


class LoginFailures:
    """INCR counters with an EXPIRE window, one key per username or address."""

    def __init__(self, redis: RedisClient, window: int, lockout: int) -> None:
        self._redis = redis
        self._window = window
        self._lockout = lockout
        self._record = redis.register_script(_RECORD)

    async def count(self, key: str) -> tuple[int, int]:
        """Return the failure count and its remaining seconds (0, 0 when none)."""
        value = await self._redis.get(key)
        if value is None:
            return 0, 0
        ttl = await self._redis.ttl(key)
        return int(value), max(int(ttl), 0)

    async def record(self, key: str, limit: int) -> tuple[int, int]:
        """Count one failure; return the new count and its remaining seconds."""
        count, ttl = await self._record(
            keys=[key], args=[self._window, limit, self._lockout]
        )
        return int(count), max(int(ttl), 0)

    async def reset(self, key: str) -> None:
        """Forget the failures counted under this key."""
        await self._redis.delete(key)


def username_key(normalized: str) -> str:
    """The counter key for a normalized username, known or not."""
    return keys.login_failures_user(normalized)


def address_key(address: str) -> str:
    """The counter key for a client address."""
    return keys.login_failures_address(address)
