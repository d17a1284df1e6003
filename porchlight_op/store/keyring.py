"""The signing keyring in Redis, and the state of each key at a given time.

A key's state follows from the stored timestamps alone, so every worker and
`porchlight-op keys list` compute the same state without anyone writing it:

- next: activate_at is in the future. The key is published but signs nothing.
- current: the most recently activated key of its algorithm. It signs.
- retired: a newer key of its algorithm has activated. It stays published
  until retire_until, so tokens it signed still verify.
- expired: past retire_until. It is no longer published and a later rotation
  deletes it.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptojwt.jwk.ec import new_ec_key
from cryptojwt.jwk.jwk import key_from_jwk_dict
from cryptojwt.jwk.rsa import new_rsa_key

from porchlight_op import log
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(log.STORE)

NEXT = "next"
CURRENT = "current"
RETIRED = "retired"
EXPIRED = "expired"

# Seconds a retired key stays published beyond the longest token lifetime. It
# covers clock skew and the poll interval, during which a worker may still sign
# with the key it has not yet seen retire.
RETIREMENT_MARGIN = 600

# Stores the keys only when the keyring does not exist yet, so concurrent
# first starts agree on one keyring.
_INITIALIZE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('INCR', KEYS[2])
return 1
"""

# ARGV: the number of kids to delete, those kids, then kid/record pairs to add.
_CHANGE = """
local removed = tonumber(ARGV[1])
for i = 2, removed + 1 do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
for i = removed + 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return redis.call('INCR', KEYS[2])
"""


@dataclass(frozen=True)
class SigningKey:
    """One key of the keyring, with its private JWK (RFC 7517)."""

    kid: str
    kty: str
    alg: str
    jwk: Mapping[str, Any]
    created_at: int
    activate_at: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "kid": self.kid,
                "kty": self.kty,
                "alg": self.alg,
                "jwk": dict(self.jwk),
                "created_at": self.created_at,
                "activate_at": self.activate_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SigningKey:
        data = json.loads(text)
        return cls(
            kid=data["kid"],
            kty=data["kty"],
            alg=data["alg"],
            jwk=data["jwk"],
            created_at=int(data["created_at"]),
            activate_at=int(data["activate_at"]),
        )

    def public_jwk(self) -> dict[str, Any]:
        """Return the JWK without its private members."""
        public: dict[str, Any] = key_from_jwk_dict(dict(self.jwk)).serialize(
            private=False
        )
        return public


@dataclass(frozen=True)
class KeyStatus:
    """A key and its state at one moment; retirement times are Unix seconds."""

    key: SigningKey
    state: str
    retired_at: int | None = None
    retire_until: int | None = None


def algorithm_of(jwk: Mapping[str, Any]) -> str:
    """Return the JWS algorithm a signing JWK is used with (RS256 or ES256)."""
    if jwk.get("kty") == "RSA":
        return "RS256"
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return "ES256"
    raise ValueError(f"unsupported signing key: kty={jwk.get('kty')!r}")


def from_jwks(jwks: Mapping[str, Any], activate_at: int = 0) -> list[SigningKey]:
    """Turn a private JWKS into keyring keys; activate_at 0 makes them current."""
    found = []
    for jwk in jwks.get("keys", []):
        found.append(
            SigningKey(
                kid=jwk["kid"],
                kty=jwk["kty"],
                alg=algorithm_of(jwk),
                jwk=jwk,
                created_at=activate_at,
                activate_at=activate_at,
            )
        )
    return found


def new_signing_keys(now: int, activate_at: int) -> list[SigningKey]:
    """Generate one RSA-2048 and one P-256 key, with RFC 7638 thumbprint kids."""
    generated = [new_rsa_key(key_size=2048, use="sig"), new_ec_key("P-256", use="sig")]
    created = []
    for key in generated:
        key.add_kid()
        jwk = key.serialize(private=True)
        created.append(
            SigningKey(
                kid=key.kid,
                kty=key.kty,
                alg=algorithm_of(jwk),
                jwk=jwk,
                created_at=now,
                activate_at=activate_at,
            )
        )
    return created


def key_states(
    signing_keys: Iterable[SigningKey], now: float, retention: int
) -> list[KeyStatus]:
    """Compute each key's state at `now`, sorted by algorithm and activation.

    `retention` is how long a key stays published after it retires, in seconds.
    """
    by_alg: dict[str, list[SigningKey]] = {}
    for key in signing_keys:
        by_alg.setdefault(key.alg, []).append(key)

    statuses = []
    for alg in sorted(by_alg):
        ordered = sorted(
            by_alg[alg], key=lambda k: (k.activate_at, k.created_at, k.kid)
        )
        active = [k for k in ordered if k.activate_at <= now]
        for older, newer in itertools.pairwise(active):
            until = newer.activate_at + retention
            state = RETIRED if now < until else EXPIRED
            statuses.append(KeyStatus(older, state, newer.activate_at, until))
        if active:
            statuses.append(KeyStatus(active[-1], CURRENT))
        statuses.extend(KeyStatus(k, NEXT) for k in ordered if k.activate_at > now)
    return statuses


def retention_for(access_token_lifetime: int, id_token_lifetime: int) -> int:
    """Seconds a retired key stays published: the longest JWT lifetime plus a margin."""
    return max(access_token_lifetime, id_token_lifetime) + RETIREMENT_MARGIN


class KeyringStore:
    """Reads and changes the keyring; every change increments its version."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._initialize = redis.register_script(_INITIALIZE)
        self._change = redis.register_script(_CHANGE)

    async def version(self) -> int:
        """Return the keyring's version, 0 when it does not exist yet."""
        value = await self._redis.get(keys.keyring_version())
        return 0 if value is None else int(value)

    async def load(self) -> tuple[int, list[SigningKey]]:
        """Return the version and every stored key.

        The version is read first, so a change between the two reads shows up as
        a new version at the next poll rather than being missed.
        """
        version = await self.version()
        records = await self._redis.hgetall(keys.keyring())  # type: ignore[misc]
        return version, [SigningKey.from_json(value) for value in records.values()]

    async def initialize(self, signing_keys: Sequence[SigningKey]) -> bool:
        """Store the keys unless a keyring exists; return whether they were stored."""
        args: list[str] = []
        for key in signing_keys:
            args += [key.kid, key.to_json()]
        stored = await self._initialize(
            keys=[keys.keyring(), keys.keyring_version()], args=args
        )
        if stored:
            logger.info("signing keyring created: kids=%s", _kids(signing_keys))
        return bool(stored)

    async def change(
        self, added: Sequence[SigningKey], removed: Sequence[str] = ()
    ) -> int:
        """Add keys and delete kids in one step; return the new version."""
        args: list[str | int] = [len(removed), *removed]
        for key in added:
            args += [key.kid, key.to_json()]
        version = await self._change(
            keys=[keys.keyring(), keys.keyring_version()], args=args
        )
        logger.info(
            "signing keyring changed: added=%s removed=%s version=%s",
            _kids(added),
            ",".join(removed) or "-",
            version,
        )
        return int(version)

    async def rotate(self, delay: int, retention: int) -> list[SigningKey]:
        """Publish new keys that become current after `delay` seconds.

        Expired keys are deleted in the same step.
        """
        now = int(time.time())
        added = new_signing_keys(now, now + delay)
        _, stored = await self.load()
        expired = [
            s.key.kid for s in key_states(stored, now, retention) if s.state == EXPIRED
        ]
        await self.change(added, expired)
        return added


def _kids(signing_keys: Iterable[SigningKey]) -> str:
    return ",".join(key.kid for key in signing_keys) or "-"
