"""Slow down, then lock, repeated failed logins per username and per address.

Unknown usernames are counted exactly like known ones, and a lock produces the
same answer for both, so throttling shows nothing about which usernames exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from porchlight_op.log import security_event
from porchlight_op.models import normalize_username
from porchlight_op.store.connection import RedisClient
from porchlight_op.store.login_failures import LoginFailures, address_key, username_key

# The first delay, doubled with each further failure up to login_max_delay.
BASE_DELAY = 0.25
# Counter keys for names that normalize_username rejects use at most this much.
MAX_COUNTED_NAME = 256


class ThrottleSettings(Protocol):
    """The settings LoginThrottle reads; Settings provides them."""

    @property
    def login_max_failures(self) -> int: ...
    @property
    def login_max_failures_per_address(self) -> int: ...
    @property
    def login_failure_window(self) -> int: ...
    @property
    def login_lockout(self) -> int: ...
    @property
    def login_slowdown_after(self) -> int: ...
    @property
    def login_max_delay(self) -> float: ...


@dataclass(frozen=True)
class Verdict:
    """Whether a login attempt may go ahead: seconds locked (0 if not), delay."""

    locked_for: int
    delay: float


def lock_message(seconds: int) -> str:
    """The message for a locked login, the same for every username."""
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed attempts. Try again in {minutes} {unit}."


def _counted_name(username: str) -> str:
    try:
        return normalize_username(username)
    except ValueError:
        return username.strip().casefold()[:MAX_COUNTED_NAME]


class LoginThrottle:
    """Applies the login_* settings to the failure counters in Redis."""

    def __init__(self, redis: RedisClient, settings: ThrottleSettings) -> None:
        self._settings = settings
        self._failures = LoginFailures(
            redis, settings.login_failure_window, settings.login_lockout
        )

    async def check(self, username: str, address: str) -> Verdict:
        """Decide, before the password is checked, whether to lock or delay."""
        settings = self._settings
        user_count, user_ttl = await self._failures.count(
            username_key(_counted_name(username))
        )
        address_count, address_ttl = await self._failures.count(address_key(address))

        locks = []
        if user_count >= settings.login_max_failures:
            locks.append(user_ttl)
        if address_count >= settings.login_max_failures_per_address:
            locks.append(address_ttl)
        return Verdict(max(locks, default=0), self.delay(user_count))

    def delay(self, failures: int) -> float:
        """Seconds to wait before checking a password after this many failures."""
        excess = failures - self._settings.login_slowdown_after
        if excess < 0:
            return 0.0
        return min(self._settings.login_max_delay, BASE_DELAY * 2.0 ** min(excess, 16))

    async def failed(self, username: str, address: str) -> int:
        """Count a failed login; return the seconds of a lock it started or extends."""
        settings = self._settings
        user_limit = settings.login_max_failures
        address_limit = settings.login_max_failures_per_address
        user_count, user_ttl = await self._failures.record(
            username_key(_counted_name(username)), user_limit
        )
        address_count, address_ttl = await self._failures.record(
            address_key(address), address_limit
        )

        # Usernames are not logged: a failed attempt may carry a password
        # typed into the username field.
        if user_count == user_limit:
            security_event("login_locked", scope="username", remote=address)
        if address_count == address_limit:
            security_event("login_locked", scope="address", remote=address)

        locks = []
        if user_count >= user_limit:
            locks.append(user_ttl)
        if address_count >= address_limit:
            locks.append(address_ttl)
        return max(locks, default=0)

    async def succeeded(self, username: str) -> None:
        """Reset the username's counter after a successful login."""
        await self._failures.reset(username_key(_counted_name(username)))

    async def address_locked_for(self, address: str) -> int:
        """Return the seconds the address stays locked, 0 if it is not locked.

        For logins without a username, such as passkey logins.
        """
        count, ttl = await self._failures.count(address_key(address))
        return ttl if count >= self._settings.login_max_failures_per_address else 0

    async def address_failed(self, address: str) -> int:
        """Count a failed login without a username; return the lock it started."""
        limit = self._settings.login_max_failures_per_address
        count, ttl = await self._failures.record(address_key(address), limit)
        if count == limit:
            security_event("login_locked", scope="address", remote=address)
        return ttl if count >= limit else 0
