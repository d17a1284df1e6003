"""User records in Redis, with a unique index on the normalized username."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from porchlight_op import log
from porchlight_op.accounts import proquint
from porchlight_op.models import User, normalize_username
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(log.STORE)

# A fresh 32-bit sub collides with probability users/2**32, so a few tries suffice.
MAX_SUB_ATTEMPTS = 8
# Optimistic updates retry when another writer changed the record in between.
MAX_UPDATE_ATTEMPTS = 8

# Compare-and-set of a user record: KEYS[1] the record, KEYS[2] its claims cache
# (same hash tag, so one cluster slot). ARGV[1] is the record as read, ARGV[2]
# the new record. Returns 1 when written, 0 when the record changed since it was
# read, -1 when it is gone. A script, not WATCH/MULTI, because redis-py 8.2's
# async cluster client sends each command of a transaction from a helper thread
# that blocks the event loop until Redis replies.
_UPDATE_RECORD = """
local current = redis.call('GET', KEYS[1])
if not current then
  return -1
end
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
_UPDATED = 1
_MISSING = -1


class UsernameTaken(Exception):
    """Raised when the normalized username already belongs to another user."""

    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is already taken")
        self.username = username


class UserStore:
    """Reads and writes User records.

    Layout: keys.user(sub) contains the JSON record, keys.username(normalized) maps
    the login name to the sub, and keys.users_index() is the set of subs. The
    three keys live in different hash slots, so they are written one command at
    a time. A crash inside create() leaves a reservation that expires, or a user
    missing from list(). A crash inside remove() leaves a user that cannot log
    in until remove() runs again, or an index entry that list() skips.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._update_record = redis.register_script(_UPDATE_RECORD)

    async def create(self, user: User) -> User:
        """Store a new user and return it, with a new sub if the given one is in use.

        Raises UsernameTaken when the normalized username exists already.
        """
        normalized = normalize_username(user.username)
        username_key = keys.username(normalized)
        # The reservation expires unless the record gets written, so a crash
        # between the two steps does not lock the name forever.
        reserved = await self._redis.set(
            username_key, user.sub, nx=True, ex=keys.USERNAME_RESERVATION_TTL
        )
        if not reserved:
            raise UsernameTaken(user.username)
        try:
            stored = await self._write_new_record(user, username_key)
        except BaseException:
            # Release the reservation so the name can be used again.
            await self._redis.delete(username_key)
            raise
        await self._redis.sadd(keys.users_index(), stored.sub)
        logger.info("user created: sub=%s", stored.sub)
        return stored

    async def _write_new_record(self, user: User, username_key: str) -> User:
        for _ in range(MAX_SUB_ATTEMPTS):
            if await self._redis.set(keys.user(user.sub), user.to_json(), nx=True):
                # A plain SET also clears the reservation's TTL.
                await self._redis.set(username_key, user.sub)
                return user
            logger.warning("sub collision, picking another: sub=%s", user.sub)
            user = dataclasses.replace(user, sub=proquint.new_id())
        raise RuntimeError(
            f"could not find an unused sub in {MAX_SUB_ATTEMPTS} attempts"
        )

    async def get(self, sub: str) -> User | None:
        """Return the user with this sub, or None."""
        raw = await self._redis.get(keys.user(sub))
        return None if raw is None else User.from_json(raw)

    async def find_by_username(self, name: str) -> User | None:
        """Return the user whose normalized username matches, or None.

        Raises ValueError when name is not a valid username.
        """
        normalized = normalize_username(name)
        sub = await self._redis.get(keys.username(normalized))
        if sub is None:
            return None
        user = await self.get(_text(sub))
        # A reservation whose create() is still running points to no record yet.
        if user is None or normalize_username(user.username) != normalized:
            return None
        return user

    async def list(self) -> list[User]:
        """Return every user, sorted by normalized username."""
        subs = sorted(
            _text(sub) for sub in await self._redis.smembers(keys.users_index())
        )
        # Not a MULTI: the user keys sit in different slots, and a cluster client
        # splits a non-transactional pipeline by node.
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in subs:
                pipe.get(keys.user(sub))
            records = await pipe.execute()
        users = [User.from_json(raw) for raw in records if raw is not None]
        return sorted(users, key=lambda user: normalize_username(user.username))

    async def remove(self, sub: str) -> bool:
        """Delete the user, its username, index entry and cached claims.

        Returns False when no user had this sub.
        """
        user = await self.get(sub)
        if user is None:
            await self._redis.srem(keys.users_index(), sub)
            return False
        # Order matters for a crash midway: the user record goes after the
        # username, so a repeated remove() still finds what is left.
        username_key = keys.username(normalize_username(user.username))
        owner = await self._redis.get(username_key)
        if owner is not None and _text(owner) == sub:
            await self._redis.delete(username_key)
        # Same hash tag, so one DEL may take both keys even on a cluster.
        await self._redis.delete(keys.user(sub), keys.claims(sub))
        await self._redis.srem(keys.users_index(), sub)
        logger.info("user removed: sub=%s", sub)
        return True

    async def set_password_hash(
        self, sub: str, password_hash: str | None
    ) -> User | None:
        """Replace the user's password hash, or return None when the user is missing."""
        return await self._update(sub, {"password_hash": password_hash})

    async def update_claims(self, sub: str, claims: Mapping[str, Any]) -> User | None:
        """Replace the claims and set updated_at, or return None for a missing user."""
        changes = {"claims": claims, "updated_at": int(time.time())}
        return await self._update(sub, changes)

    async def set_disabled(self, sub: str, disabled: bool) -> User | None:
        """Enable or disable the user, or return None when the user is missing."""
        return await self._update(sub, {"disabled": disabled})

    async def set_groups(self, sub: str, groups: tuple[str, ...]) -> User | None:
        """Replace the user's groups, or return None when the user is missing."""
        return await self._update(sub, {"groups": groups})

    async def _update(self, sub: str, changes: dict[str, Any]) -> User | None:
        """Apply changes with a compare-and-set on the record; drop the claims cache.

        Returns None when the user is missing. Raises RuntimeError when other
        writers changed the record MAX_UPDATE_ATTEMPTS times in a row.
        """
        user_key = keys.user(sub)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            raw = await self._redis.get(user_key)
            if raw is None:
                return None
            updated = dataclasses.replace(User.from_json(raw), **changes)
            result = await self._update_record(
                keys=[user_key, keys.claims(sub)], args=[raw, updated.to_json()]
            )
            if result == _UPDATED:
                return updated
            if result == _MISSING:
                return None
            logger.debug("user changed during update, retrying: sub=%s", sub)
        raise RuntimeError(
            f"user {sub} changed concurrently {MAX_UPDATE_ATTEMPTS} times in a row"
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
