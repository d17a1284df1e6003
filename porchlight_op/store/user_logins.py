"""The index of each user's live browser logins, for listing and ending them.

One hash per user (keys.user_logins) maps each login session id (`sid`) to a
JSON record of that login. The browser's session checks its entry on every
request that reads the login, so deleting an entry ends that login on every
worker at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from . import keys
from .connection import RedisClient

# KEYS: the user's login hash. ARGV: sid, now. Sets last_seen of an existing
# entry; returns 1 when the entry exists, else 0.
_TOUCH = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local entry = cjson.decode(raw)
entry['last_seen'] = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"""

# KEYS: the user's login hash. Deletes it; returns the sids it contained.
_TAKE_ALL = """
local sids = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[1])
return sids
"""


@dataclass(frozen=True)
class LoginEntry:
    """One live browser login as the index records it; times in epoch seconds."""

    sid: str
    created: int  # the login's auth_time
    last_seen: int
    amr: tuple[str, ...]
    user_agent: str  # a short summary, e.g. "Firefox on Linux"
    address: str  # the client address as the app saw it at login


class UserLogins:
    """Adds, checks, lists and removes entries of the per-user login index."""

    def __init__(self, client: RedisClient, max_age: int, idle_timeout: int) -> None:
        self._redis = client
        self._max_age = max_age
        self._idle_timeout = idle_timeout
        self._touch = client.register_script(_TOUCH)
        self._take_all = client.register_script(_TAKE_ALL)

    async def add(self, sub: str, entry: LoginEntry) -> None:
        """Record a login; the hash lives as long as the newest login may."""
        key = keys.user_logins(sub)
        record = asdict(entry)
        del record["sid"]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, entry.sid, json.dumps(record))
            pipe.expire(key, self._max_age)
            await pipe.execute()

    async def exists(self, sub: str, sid: str) -> bool:
        """Tell whether the login is still in the index."""
        return bool(await self._redis.hexists(keys.user_logins(sub), sid))

    async def touch(self, sub: str, sid: str, now: int) -> bool:
        """Set the login's last_seen; False when the login is no longer indexed."""
        found = await self._touch(keys=[keys.user_logins(sub)], args=[sid, now])
        return int(found) == 1

    async def entries(self, sub: str) -> list[LoginEntry]:
        """Return the user's live logins, newest first; drop the expired ones."""
        key = keys.user_logins(sub)
        raw = await self._redis.hgetall(key)
        now = int(time.time())
        live: list[LoginEntry] = []
        expired: list[str] = []
        for field, value in raw.items():
            entry = _entry(_text(field), _text(value))
            if entry is None or not self._alive(entry, now):
                expired.append(_text(field))
            else:
                live.append(entry)
        if expired:
            await self._redis.hdel(key, *expired)
        return sorted(live, key=lambda entry: entry.created, reverse=True)

    async def remove(self, sub: str, sid: str) -> bool:
        """Delete one login's entry; False when it was not indexed."""
        return bool(await self._redis.hdel(keys.user_logins(sub), sid))

    async def remove_all(self, sub: str) -> list[str]:
        """Delete every entry of the user at once; return their sids."""
        sids: Sequence[bytes | str] = await self._take_all(keys=[keys.user_logins(sub)])
        return [_text(sid) for sid in sids]

    def _alive(self, entry: LoginEntry, now: int) -> bool:
        # NOTE: last_seen is written at most once per TOUCH_INTERVAL (60 s) of
        # web/login_session.py, so an entry may outlive its browser session's
        # idle limit by up to that interval.
        return (
            now - entry.created <= self._max_age
            and now - entry.last_seen <= self._idle_timeout
        )


def _entry(sid: str, raw: str) -> LoginEntry | None:
    try:
        record = json.loads(raw)
        return LoginEntry(
            sid=sid,
            created=int(record["created"]),
            last_seen=int(record["last_seen"]),
            amr=tuple(str(method) for method in record.get("amr") or ()),
            user_agent=str(record.get("user_agent", "")),
            address=str(record.get("address", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
