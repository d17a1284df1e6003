"""Passkeys (WebAuthn credentials) per user, and the challenges of ceremonies.

A user's passkeys live in one hash under the user's hash tag, keyed by the
base64url credential id. A global key per credential maps its id to the owning
sub, so a login without a username finds the user. The two keys sit in
different cluster slots, so they are written with separate commands: the owner
key first on add and last on remove, which leaves at worst a stale owner key
that find() ignores.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from porchlight_op.log import ACCOUNTS
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(ACCOUNTS)

# Seconds a ceremony's challenge stays usable.
CEREMONY_TTL = 300
# secrets.token_urlsafe(32) gives 43 characters from the base64url alphabet.
CEREMONY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# Attempts of a compare-and-set before giving up on a record that keeps changing.
CAS_ATTEMPTS = 3

# Replace a record only if it still equals the value read before (KEYS[1] the
# hash, ARGV: field, expected JSON, new JSON).
_REPLACE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
# Delete a passkey unless it is the user's last way to sign in: the last
# passkey of a user whose record has no password hash. KEYS[1] the user record,
# KEYS[2] the passkeys hash (same hash tag), ARGV[1] the credential id.
# Returns 1 when deleted, 0 when missing, -1 when it is the last method.
_REMOVE_UNLESS_LAST = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return 0
end
local has_password = false
local user = redis.call('GET', KEYS[1])
if user then
  has_password = type(cjson.decode(user).password_hash) == 'string'
end
if not has_password and redis.call('HLEN', KEYS[2]) <= 1 then
  return -1
end
return redis.call('HDEL', KEYS[2], ARGV[1])
"""
# Delete a key only if it contains the given value (KEYS[1], ARGV[1]).
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def b64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url, as WebAuthn's JSON forms do."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; raises ValueError for anything else."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("invalid base64url text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Passkey:
    """A registered WebAuthn credential of one user."""

    credential_id: str  # base64url
    public_key: str  # base64url COSE key
    sign_count: int
    name: str
    created_at: int
    last_used_at: int | None = None
    transports: tuple[str, ...] = ()
    aaguid: str = ""
    backup_eligible: bool = False
    backed_up: bool = False

    def to_json(self) -> str:
        """Serialize the record as stored in Redis."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Passkey:
        """Parse a stored record."""
        data = json.loads(raw)
        data["transports"] = tuple(data.get("transports", ()))
        return cls(**data)


class CredentialTaken(Exception):
    """Raised when a credential id is registered already, to anyone."""


class SignCountNotIncreased(Exception):
    """Raised when an assertion's signature counter is not above the stored one."""

    def __init__(self, stored: int, presented: int) -> None:
        super().__init__(f"sign count {presented} is not above stored {stored}")
        self.stored = stored
        self.presented = presented


def counter_acceptable(stored: int, presented: int) -> bool:
    """Check a signature counter (WebAuthn Level 2, 7.2, verifying an assertion).

    Authenticators without a counter always send 0, which is accepted while the
    stored value is 0 too. Otherwise the counter must increase.
    """
    if stored == 0 and presented == 0:
        return True
    return presented > stored


class PasskeyStore:
    """Stores, finds, updates and removes users' passkeys."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._replace = redis.register_script(_REPLACE_IF_UNCHANGED)
        self._delete_if_equal = redis.register_script(_DELETE_IF_EQUAL)
        self._remove_unless_last = redis.register_script(_REMOVE_UNLESS_LAST)

    async def list(self, sub: str) -> list[Passkey]:
        """Return the user's passkeys, oldest first."""
        raw = await self._redis.hvals(keys.passkeys(sub))
        return sorted(
            (Passkey.from_json(item) for item in raw),
            key=lambda passkey: (passkey.created_at, passkey.credential_id),
        )

    async def get(self, sub: str, credential_id: str) -> Passkey | None:
        """Return one passkey of the user, or None."""
        raw = await self._redis.hget(keys.passkeys(sub), credential_id)
        return None if raw is None else Passkey.from_json(raw)

    async def add(self, sub: str, passkey: Passkey) -> None:
        """Store a new passkey; raise CredentialTaken if its id is registered."""
        raw_id = b64url_decode(passkey.credential_id)
        owner_key = keys.passkey_owner(raw_id)
        if not await self._redis.set(owner_key, sub, nx=True):
            raise CredentialTaken(passkey.credential_id)
        added = await self._redis.hsetnx(
            keys.passkeys(sub), passkey.credential_id, passkey.to_json()
        )
        if not added:
            await self._redis.delete(owner_key)
            raise CredentialTaken(passkey.credential_id)
        logger.info("passkey added: sub=%s aaguid=%s", sub, passkey.aaguid or "-")

    async def find(self, credential_id: bytes) -> tuple[str, Passkey] | None:
        """Return the owner's sub and the passkey with this raw id, or None."""
        owner = await self._redis.get(keys.passkey_owner(credential_id))
        if owner is None:
            return None
        sub = owner.decode() if isinstance(owner, bytes) else owner
        passkey = await self.get(sub, b64url(credential_id))
        if passkey is None:
            return None
        return sub, passkey

    async def update_after_use(
        self, sub: str, credential_id: str, sign_count: int
    ) -> Passkey | None:
        """Store a new signature counter and the time of use.

        Returns None when the passkey is gone. Raises SignCountNotIncreased when
        the stored counter is already at or above sign_count, for example
        because a concurrent login with a replayed assertion stored it first.
        """

        def change(passkey: Passkey) -> Passkey:
            if not counter_acceptable(passkey.sign_count, sign_count):
                raise SignCountNotIncreased(passkey.sign_count, sign_count)
            return replace(
                passkey, sign_count=sign_count, last_used_at=int(time.time())
            )

        return await self._update(sub, credential_id, change)

    async def rename(self, sub: str, credential_id: str, name: str) -> Passkey | None:
        """Give a passkey a new name; returns None when the passkey is gone."""
        return await self._update(
            sub, credential_id, lambda passkey: replace(passkey, name=name)
        )

    async def remove(self, sub: str, credential_id: str) -> bool:
        """Delete one passkey of the user; return False if it did not exist."""
        removed = await self._redis.hdel(keys.passkeys(sub), credential_id)
        await self._release_owner(sub, credential_id)
        if removed:
            logger.info("passkey removed: sub=%s", sub)
        return bool(removed)

    async def remove_unless_last(self, sub: str, credential_id: str) -> bool | None:
        """Delete a passkey unless the user would be left without a way to sign in.

        Returns True when deleted, False when the passkey did not exist, and
        None when it is the last passkey of a user without a password. The
        check and the deletion run in one script, so concurrent removals
        cannot both pass it.
        """
        result = await self._remove_unless_last(
            keys=[keys.user(sub), keys.passkeys(sub)], args=[credential_id]
        )
        if int(result) == -1:
            return None
        deleted = int(result) == 1
        if deleted:
            await self._release_owner(sub, credential_id)
            logger.info("passkey removed: sub=%s", sub)
        return deleted

    async def remove_all(self, sub: str) -> int:
        """Delete every passkey of the user; return how many there were."""
        credential_ids = [
            item.decode() if isinstance(item, bytes) else item
            for item in await self._redis.hkeys(keys.passkeys(sub))
        ]
        await self._redis.delete(keys.passkeys(sub))
        for credential_id in credential_ids:
            await self._release_owner(sub, credential_id)
        if credential_ids:
            logger.info("passkeys removed: sub=%s count=%d", sub, len(credential_ids))
        return len(credential_ids)

    async def _release_owner(self, sub: str, credential_id: str) -> None:
        try:
            raw_id = b64url_decode(credential_id)
        except ValueError:
            return
        await self._delete_if_equal(keys=[keys.passkey_owner(raw_id)], args=[sub])

    async def _update(
        self, sub: str, credential_id: str, change: Any
    ) -> Passkey | None:
        """Apply change(passkey) with compare-and-set, retrying a few times."""
        key = keys.passkeys(sub)
        for _ in range(CAS_ATTEMPTS):
            raw = await self._redis.hget(key, credential_id)
            if raw is None:
                return None
            updated: Passkey = change(Passkey.from_json(raw))
            if await self._replace(
                keys=[key], args=[credential_id, raw, updated.to_json()]
            ):
                return updated
        raise ConcurrentUpdate(credential_id)


class ConcurrentUpdate(Exception):
    """Raised when a passkey record changed on every compare-and-set attempt."""


@dataclass(frozen=True)
class Ceremony:
    """A WebAuthn ceremony in progress: its challenge and what it is bound to."""

    purpose: str  # "login", "add" (signed-in user) or "enrol" (invitation)
    challenge: str  # base64url
    sub: str | None = None
    data: dict[str, str] = field(default_factory=dict)


class CeremonyStore:
    """Stores ceremony challenges with a short TTL; each can be taken once."""

    def __init__(self, redis: RedisClient, ttl: int = CEREMONY_TTL) -> None:
        self._redis = redis
        self._ttl = ttl

    async def put(self, ceremony: Ceremony) -> str:
        """Store a ceremony and return its new random id."""
        ceremony_id = secrets.token_urlsafe(32)
        await self._redis.set(
            keys.webauthn_ceremony(ceremony_id),
            json.dumps(asdict(ceremony)),
            ex=self._ttl,
        )
        return ceremony_id

    async def take(self, ceremony_id: str) -> Ceremony | None:
        """Return the ceremony and delete it (GETDEL), or None if unknown or expired."""
        if not CEREMONY_ID_PATTERN.fullmatch(ceremony_id):
            return None
        raw = await self._redis.getdel(keys.webauthn_ceremony(ceremony_id))
        if raw is None:
            return None
        return Ceremony(**json.loads(raw))
