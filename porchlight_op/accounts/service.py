"""The account service: create users, check passwords, change and remove users."""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from porchlight_op import log
from porchlight_op.accounts import proquint
from porchlight_op.accounts.passwords import Argon2Settings, PasswordHasher
from porchlight_op.models import User, normalize_username, validate_claims
from porchlight_op.store.connection import RedisClient
from porchlight_op.store.passkeys import PasskeyStore
from porchlight_op.store.user_revocation import UserRevocation
from porchlight_op.store.users import UsernameTaken, UserStore

__all__ = [
    "Accounts",
    "UserNotFound",
    "UsernameTaken",
    "normalize_username",
    "validate_password",
]

logger = logging.getLogger(log.ACCOUNTS)

MIN_PASSWORD_LENGTH = 8
# Argon2 accepts any length, but there is no reason to let one request hash megabytes.
MAX_PASSWORD_LENGTH = 1024

OnChange = Callable[[str], Awaitable[None]]


class UserNotFound(LookupError):
    """Raised when no user has the given sub."""

    def __init__(self, sub: str) -> None:
        super().__init__(f"user {sub!r} not found")
        self.sub = sub


def validate_password(password: str) -> None:
    """Raise ValueError unless the password length is within the allowed range."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"invalid password: at least {MIN_PASSWORD_LENGTH} characters required"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"invalid password: at most {MAX_PASSWORD_LENGTH} characters allowed"
        )


class Accounts:
    """Creates, authenticates, changes and removes users.

    Every change to a user's claims, password, disabled flag or existence drops
    the cached claims at keys.claims(sub) (UserStore does so in the same write)
    and then awaits on_change(sub), if given.
    """

    def __init__(
        self,
        redis: RedisClient,
        settings: Argon2Settings,
        on_change: OnChange | None = None,
    ) -> None:
        self._store = UserStore(redis)
        self._passkeys = PasskeyStore(redis)
        self._hasher = PasswordHasher(settings)
        self._on_change = on_change
        self._revocation = UserRevocation(redis)

    async def create_user(
        self,
        username: str,
        password: str | None,
        claims: Mapping[str, Any] | None = None,
        groups: Sequence[str] = (),
        sub: str | None = None,
    ) -> User:
        """Create a user with the given or a new proquint sub and return it.

        Raises ValueError for an invalid username, password, claim or sub, and
        UsernameTaken when the normalized username exists already.
        """
        if sub is not None and not proquint.is_valid(sub):
            raise ValueError(f"invalid sub {sub!r}: expected a proquint user id")
        normalized = normalize_username(username)
        if proquint.is_valid(normalized):
            # find() treats such a string as a sub, so it cannot be a username.
            raise ValueError(
                f"invalid username {username!r}: it has the form of a user id"
            )
        checked_claims = validate_claims(claims or {})
        password_hash = None
        if password is not None:
            validate_password(password)
            password_hash = await self._hasher.hash(password)

        now = int(time.time())
        user = User(
            sub=sub or proquint.new_id(),
            username=unicodedata.normalize("NFC", username.strip()),
            password_hash=password_hash,
            claims=checked_claims,
            created_at=now,
            updated_at=now,
            groups=tuple(groups),
        )
        return await self._store.create(user)

    async def authenticate(self, username: str, password: str) -> User | None:
        """Return the user when the password matches, else None.

        Unknown users, users without a password, wrong passwords and disabled
        users all get None after one argon2 verification, so neither the result
        nor its timing shows which case applied. A hash made with older parameters
        is replaced after a successful login.
        """
        user = await self._find_by_username(username)
        if (
            user is None
            or user.password_hash is None
            or len(password) > MAX_PASSWORD_LENGTH
        ):
            await self._hasher.verify_dummy(password[:MAX_PASSWORD_LENGTH])
            return None
        if not await self._hasher.verify(user.password_hash, password):
            logger.debug("password mismatch: sub=%s", user.sub)
            return None
        if user.disabled:
            logger.debug("login for disabled user rejected: sub=%s", user.sub)
            return None
        if self._hasher.needs_rehash(user.password_hash):
            return await self._rehash(user, password)
        return user

    async def set_password(self, sub: str, password: str | None) -> User:
        """Set a new password, or remove it with None. Raises UserNotFound."""
        password_hash = None
        if password is not None:
            validate_password(password)
            password_hash = await self._hasher.hash(password)
        user = await self._store.set_password_hash(sub, password_hash)
        if user is None:
            raise UserNotFound(sub)
        logger.info("password changed: sub=%s", sub)
        await self._changed(sub)
        return user

    async def update_claims(self, sub: str, claims: Mapping[str, Any]) -> User:
        """Replace the user's claims. Raises UserNotFound or InvalidClaim."""
        user = await self._store.update_claims(sub, validate_claims(claims))
        if user is None:
            raise UserNotFound(sub)
        await self._changed(sub)
        return user

    async def set_groups(self, sub: str, groups: Sequence[str]) -> User:
        """Replace the user's groups. Raises UserNotFound."""
        user = await self._store.set_groups(sub, tuple(groups))
        if user is None:
            raise UserNotFound(sub)
        logger.info("groups changed: sub=%s groups=%s", sub, ",".join(groups) or "-")
        await self._changed(sub)
        return user

    async def set_disabled(self, sub: str, disabled: bool) -> User:
        """Disable or re-enable the user. Raises UserNotFound.

        Disabling also ends every login of the user and deletes every grant and
        consent, so the user's tokens stop working at once.
        """
        user = await self._store.set_disabled(sub, disabled)
        if user is None:
            raise UserNotFound(sub)
        logger.info("user %s: sub=%s", "disabled" if disabled else "enabled", sub)
        await self._changed(sub)
        if disabled:
            await self._revocation.revoke_everything(sub)
        return user

    async def get(self, sub: str) -> User | None:
        """Return the user with this sub, or None."""
        if not proquint.is_valid(sub):
            return None
        return await self._store.get(sub)

    async def find(self, username_or_sub: str) -> User | None:
        """Return the user with this sub or, failing that, this username."""
        if proquint.is_valid(username_or_sub):
            return await self._store.get(username_or_sub)
        return await self._find_by_username(username_or_sub)

    async def list(self) -> list[User]:
        """Return every user, sorted by normalized username."""
        return await self._store.list()

    async def remove(self, sub: str) -> bool:
        """Delete the user with its passkeys, logins, grants and consents.

        Returns False when no user had this sub.
        """
        removed = await self._store.remove(sub)
        await self._passkeys.remove_all(sub)
        if removed:
            await self._changed(sub)
            await self._revocation.revoke_everything(sub)
        return removed

    async def _find_by_username(self, username: str) -> User | None:
        try:
            return await self._store.find_by_username(username)
        except ValueError:
            return None

    async def _rehash(self, user: User, password: str) -> User | None:
        new_hash = await self._hasher.hash(password)
        updated = await self._store.set_password_hash(user.sub, new_hash)
        if updated is None:
            # The user was removed during the login, so the login fails.
            return None
        logger.info("password rehashed with current parameters: sub=%s", user.sub)
        await self._changed(user.sub)
        return updated

    async def _changed(self, sub: str) -> None:
        if self._on_change is not None:
            await self._on_change(sub)
