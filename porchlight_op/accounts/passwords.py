"""Argon2id password hashing that runs off the event loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Protocol

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from porchlight_op import log

logger = logging.getLogger(log.ACCOUNTS)


class Argon2Settings(Protocol):
    """The Settings fields that size the argon2id work (memory in KiB)."""

    @property
    def argon2_time_cost(self) -> int: ...

    @property
    def argon2_memory_cost(self) -> int: ...

    @property
    def argon2_parallelism(self) -> int: ...


class PasswordHasher:
    """Hashes and verifies passwords with argon2id in the default thread executor.

    One hash or verify takes tens of milliseconds with the default settings, so
    running it on the event loop would stall every other request.
    """

    def __init__(self, settings: Argon2Settings) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of the password, with a random salt."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Return True when the password matches the hash.

        A malformed stored hash is logged and counts as a mismatch.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> bool:
        """Spend one verification on a throwaway hash and return False.

        Callers use it for unknown users and users without a password, so those
        failures take as long as a wrong password.
        """
        if self._dummy_hash is None:
            # Concurrent first calls may each compute one, and any of them will do.
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy_hash, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Return True when the hash was made with other parameters than ours."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except InvalidHashError:
            logger.error("stored password hash is not a valid argon2 hash")
            return False
        except VerificationError:
            # VerifyMismatchError (wrong password) is a subclass.
            return False
