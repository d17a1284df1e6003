"""One-time invitation links that let a person create an account.

Redis holds only the SHA-256 digest of each token, so a copy of the database
yields no usable link. Each invitation is a hash at keys.invitation(digest) that
expires at the invitation's expiry. A used or revoked invitation keeps its key
until then, so its link gets a clear "no longer valid" answer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from porchlight_op import log
from porchlight_op.models import ADMIN_GROUP
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(log.STORE)

# token_urlsafe(32) gives 43 characters from the base64url alphabet.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# Characters of the digest that `invite list` shows and `invite revoke` accepts.
ID_LENGTH = 12

REGISTER_PATH = "/register/"  # the route that web/register.py serves

PENDING = "pending"
USED = "used"
REVOKED = "revoked"

_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# NOTE: a limit chosen for these links, not one from a standard. It keeps the
# expiry time within the years that datetime and the pages can show.
MAX_LIFETIME_DAYS = 3650

# Moves a pending invitation to ARGV[1] (used or revoked) and returns its fields
# as they were before, or an empty list when the key is gone. One script, so two
# concurrent redemptions cannot both see "pending".
_TRANSITION = """
local before = redis.call('HGETALL', KEYS[1])
if redis.call('HGET', KEYS[1], 'state') == 'pending' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
end
return before
"""

# Writes a new invitation's fields (ARGV[2..], name and value pairs) and its
# expiry (ARGV[1], Unix seconds) together. A script rather than MULTI, which the
# async cluster client runs from a helper thread that blocks the event loop.
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
"""

# Puts a used invitation back to pending, after the account creation it was
# claimed for failed. Returns 1 when restored.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'used' then
  redis.call('HSET', KEYS[1], 'state', 'pending')
  return 1
end
return 0
"""


class InvalidDuration(ValueError):
    """Raised for a duration that is not a number followed by s, m, h or d."""


def parse_duration(text: str) -> int:
    """Return the seconds in a duration such as 30m, 12h or 7d."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidDuration(
            f"invalid duration {text!r}: expected a positive number followed by"
            " s, m, h or d, for example 30m, 12h or 7d"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_LIFETIME_DAYS * _UNIT_SECONDS["d"]:
        raise InvalidDuration(
            f"invalid duration {text!r}: at most {MAX_LIFETIME_DAYS} days allowed"
        )
    return seconds


def register_url(issuer: str, token: str) -> str:
    """Return the URL at which an invitation's token is redeemed."""
    return issuer.rstrip("/") + REGISTER_PATH + token


def validate_email(email: str) -> None:
    """Raise ValueError unless the address has the form name@domain."""
    if "@" not in email.strip("@"):
        raise ValueError(f"invalid email address {email!r}: expected name@domain")


def token_digest(token: str) -> str:
    """Return the SHA-256 hex digest that names a token's invitation."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Invitation:
    """An invitation as stored: never the token, only its digest."""

    digest: str
    created_at: int
    expires_at: int
    state: str = PENDING
    email: str | None = None
    admin: bool = False
    # When set, the account must take this username (init-admin).
    username: str | None = None
    # When set, the link sets a new password for this existing user instead of
    # creating an account (a credential reset by an administrator).
    sub: str | None = None

    @property
    def id(self) -> str:
        """The short form of the digest that the command line shows."""
        return self.digest[:ID_LENGTH]

    @property
    def groups(self) -> tuple[str, ...]:
        """Groups that the account created with this invitation joins."""
        return (ADMIN_GROUP,) if self.admin else ()

    def to_fields(self) -> dict[str, str]:
        """Return the Redis hash fields; absent options are omitted."""
        fields = {
            "created_at": str(self.created_at),
            "expires_at": str(self.expires_at),
            "state": self.state,
            "admin": "1" if self.admin else "0",
        }
        if self.email is not None:
            fields["email"] = self.email
        if self.username is not None:
            fields["username"] = self.username
        if self.sub is not None:
            fields["sub"] = self.sub
        return fields

    @classmethod
    def from_fields(cls, digest: str, fields: dict[str, str]) -> Invitation:
        """Build an Invitation from to_fields() output."""
        return cls(
            digest=digest,
            created_at=int(fields["created_at"]),
            expires_at=int(fields["expires_at"]),
            state=fields["state"],
            email=fields.get("email"),
            admin=fields.get("admin") == "1",
            username=fields.get("username"),
            sub=fields.get("sub"),
        )


class AmbiguousId(LookupError):
    """Raised when an invitation id prefix matches more than one invitation."""


class InvitationStore:
    """Creates, lists, revokes and redeems invitations."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._transition = redis.register_script(_TRANSITION)
        self._release = redis.register_script(_RELEASE)

    async def create(
        self,
        lifetime: int,
        email: str | None = None,
        admin: bool = False,
        username: str | None = None,
        sub: str | None = None,
    ) -> tuple[str, Invitation]:
        """Store a new invitation valid for lifetime seconds; return its token."""
        if lifetime <= 0:
            raise ValueError(f"invalid lifetime {lifetime}: must be positive")
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        invitation = Invitation(
            digest=token_digest(token),
            created_at=now,
            expires_at=now + lifetime,
            email=email,
            admin=admin,
            username=username,
            sub=sub,
        )
        pairs = [part for item in invitation.to_fields().items() for part in item]
        await self._create(
            keys=[keys.invitation(invitation.digest)],
            args=[invitation.expires_at, *pairs],
        )
        await self._redis.sadd(keys.invitations_index(), invitation.digest)
        logger.info(
            "invitation created: id=%s admin=%s expires_at=%d",
            invitation.id,
            admin,
            invitation.expires_at,
        )
        return token, invitation

    async def find(self, token: str) -> Invitation | None:
        """Return the invitation of a token in any state, or None when unknown."""
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        return await self._load(token_digest(token))

    async def claim(self, token: str) -> Invitation | None:
        """Mark the invitation used and return it as it was before.

        Returns None when the token is unknown or expired; the returned state is
        not PENDING when the invitation was used or revoked already. Of two
        concurrent calls, only one sees PENDING.
        """
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        return await self._move(token_digest(token), USED)

    async def release(self, invitation: Invitation) -> bool:
        """Make a claimed invitation pending again; False if it changed meanwhile."""
        restored = await self._release(keys=[keys.invitation(invitation.digest)])
        return bool(restored)

    async def revoke(self, id_prefix: str) -> Invitation | None:
        """Revoke the one invitation whose digest starts with id_prefix.

        Returns the invitation as it was, or None when none matches. Raises
        AmbiguousId when several match.
        """
        prefix = id_prefix.strip().lower()
        matches = [item for item in await self.list() if item.digest.startswith(prefix)]
        if not prefix or not matches:
            return None
        if len(matches) > 1:
            raise AmbiguousId(
                f"invitation id {id_prefix!r} matches {len(matches)} invitations;"
                " give more characters"
            )
        before = await self._move(matches[0].digest, REVOKED)
        if before is not None and before.state == PENDING:
            logger.info("invitation revoked: id=%s", before.id)
        return before

    async def list(self) -> list[Invitation]:
        """Return every unexpired invitation, soonest expiry first."""
        index = keys.invitations_index()
        digests = [_text(item) for item in await self._redis.smembers(index)]
        found = [await self._load(digest) for digest in digests]
        stale = [
            digest for digest, item in zip(digests, found, strict=True) if item is None
        ]
        if stale:
            # The invitation keys expired on their own, so drop their entries.
            await self._redis.srem(index, *stale)
        invitations = [item for item in found if item is not None]
        return sorted(invitations, key=lambda item: item.expires_at)

    async def _load(self, digest: str) -> Invitation | None:
        raw = await self._redis.hgetall(keys.invitation(digest))
        return Invitation.from_fields(digest, _decode(raw)) if raw else None

    async def _move(self, digest: str, state: str) -> Invitation | None:
        raw = await self._transition(keys=[keys.invitation(digest)], args=[state])
        if not raw:
            return None
        pairs = [_text(item) for item in raw]
        fields = dict(zip(pairs[0::2], pairs[1::2], strict=True))
        return Invitation.from_fields(digest, fields)


def _decode(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
