"""Keep one worker's idpyoidc KeyJar in step with the keyring in Redis.

The KeyJar is changed in place, because idpyoidc's Server, its context and every
endpoint (through upstream_get("attribute", "keyjar")) share that one object.

cryptojwt signs with the first key of the right algorithm among the issuer's
keys and then the keys of owner "" (JWT.my_keys and pick_key in cryptojwt
1.11). So owner "" contains only the current private keys, and the issuer
contains the current private keys first, followed by the public halves of next and
retired keys. Verification (of our own JWT access tokens at userinfo) looks up
the issuer's keys by kid, so it finds retired keys too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from cryptojwt import KeyJar
from cryptojwt.key_bundle import KeyBundle
from cryptojwt.key_issuer import KeyIssuer
from redis.exceptions import RedisClusterException, RedisError

from ..log import OIDC
from ..store.keyring import (
    CURRENT,
    NEXT,
    RETIRED,
    KeyringStore,
    KeyStatus,
    SigningKey,
    from_jwks,
    key_states,
)

logger = logging.getLogger(OIDC)


def install_keys(keyjar: KeyJar, issuer: str, statuses: Sequence[KeyStatus]) -> None:
    """Replace the OP's own keys in the KeyJar: sign with current, publish the rest."""
    signing = [dict(s.key.jwk) for s in statuses if s.state == CURRENT]
    public = [s.key.public_jwk() for s in statuses if s.state in (NEXT, RETIRED)]

    own = KeyIssuer()
    published = KeyIssuer(name=issuer)
    if signing:
        own.add(KeyBundle(signing))
        published.add(KeyBundle(signing))
    if public:
        published.add(KeyBundle(public))

    # Two item assignments with no await between them, so no request runs between.
    keyjar[""] = own
    keyjar[issuer] = published


class KeyringFollower:
    """Polls the keyring version and reinstalls the keys when the state changes."""

    def __init__(
        self,
        store: KeyringStore,
        keyjar: KeyJar,
        issuer: str,
        retention: int,
    ) -> None:
        self._store = store
        self._keyjar = keyjar
        self._issuer = issuer
        self._retention = retention
        self._version: int | None = None
        self._keys: list[SigningKey] = []
        self._installed: tuple[tuple[str, str], ...] = ()
        self._failing = False

    async def start(self, signing_jwks: dict[str, object]) -> None:
        """Create the keyring from the old single JWKS if needed, then install it."""
        await self._store.initialize(from_jwks(signing_jwks))
        await self.refresh()

    async def refresh(self) -> bool:
        """Reload on a new version, reinstall when a state changed; True if so."""
        version = await self._store.version()
        if version != self._version:
            self._version, self._keys = await self._store.load()
        return self.apply(time.time())

    def apply(self, now: float) -> bool:
        """Install the keys as of `now` unless their states are already installed."""
        statuses = key_states(self._keys, now, self._retention)
        installed = tuple((s.key.kid, s.state) for s in statuses)
        if installed == self._installed:
            return False
        install_keys(self._keyjar, self._issuer, statuses)
        self._installed = installed
        current = [s.key.kid for s in statuses if s.state == CURRENT]
        logger.info(
            "signing keys installed: current=%s version=%s",
            ",".join(current) or "-",
            self._version,
        )
        return True

    async def follow(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except (RedisError, RedisClusterException) as error:
                # Signing goes on with the installed keys and the next poll
                # retries. Only the first failure of a run is logged.
                if not self._failing:
                    logger.warning("keyring refresh failed: %s", error)
                self._failing = True
                continue
            if self._failing:
                logger.info("keyring refresh works again")
            self._failing = False


@contextlib.asynccontextmanager
async def following(
    follower: KeyringFollower, interval: float
) -> AsyncIterator[asyncio.Task[None]]:
    """Run follower.follow in a task for the duration of the block."""
    task = asyncio.create_task(follower.follow(interval), name="keyring-follower")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
