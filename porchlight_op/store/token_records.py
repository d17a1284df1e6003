"""Token bookkeeping in Redis beside idpyoidc's grants.

Opaque access tokens, used client assertion ids, revoked client credentials
tokens and cached client JWK Sets. None of these keys stores a usable token:
an opaque token maps to its JWT encrypted under a key derived from the opaque
value itself, so only the holder of the opaque token can read it back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import keys
from .connection import RedisClient

# 256 random bits: RFC 6749 10.10 recommends a guessing chance of at most 2^-160.
OPAQUE_TOKEN_BYTES = 32
NONCE_BYTES = 12


def _derive(label: bytes, value: str) -> bytes:
    return hashlib.sha256(label + b":" + value.encode()).digest()


def _lookup(reference: str) -> str:
    digest = _derive(b"lookup", reference)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class TokenRecords:
    """Reads and writes the token records; every key has a TTL."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def wrap(self, jwt: str, ttl: int) -> str:
        """Store `jwt` behind a new opaque token that lives `ttl` seconds."""
        reference = secrets.token_urlsafe(OPAQUE_TOKEN_BYTES)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(_derive(b"seal", reference)).encrypt(nonce, jwt.encode(), None)
        await self._redis.set(
            keys.opaque_token(_lookup(reference)), nonce + sealed, ex=max(ttl, 1)
        )
        return reference

    async def unwrap(self, reference: str) -> str | None:
        """Return the JWT behind an opaque token, or None when unknown or expired."""
        raw = await self._redis.get(keys.opaque_token(_lookup(reference)))
        if not isinstance(raw, bytes):
            return None
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        try:
            plain = AESGCM(_derive(b"seal", reference)).decrypt(nonce, sealed, None)
        except InvalidTag:
            return None
        return plain.decode()

    async def discard(self, reference: str) -> None:
        """Forget an opaque token, so it no longer resolves."""
        await self._redis.delete(keys.opaque_token(_lookup(reference)))

    async def use_jti(self, client_id: str, jti: str, ttl: int) -> bool:
        """Record a client assertion's jti; False when it was already used."""
        stored = await self._redis.set(
            keys.assertion_jti(client_id, jti), b"1", nx=True, ex=max(ttl, 1)
        )
        return bool(stored)

    async def revoke_jti(self, jti: str, ttl: int) -> None:
        """Mark a self-contained access token as revoked until it expires."""
        await self._redis.set(keys.revoked_token(jti), b"1", ex=max(ttl, 1))

    async def is_revoked(self, jti: str) -> bool:
        """Tell whether a self-contained access token was revoked."""
        return bool(await self._redis.exists(keys.revoked_token(jti)))

    async def cached_jwks(self, client_id: str) -> tuple[dict[str, Any], int] | None:
        """Return the client's JWK Set fetched earlier and its fetch time, or None."""
        raw = await self._redis.get(keys.client_jwks(client_id))
        if raw is None:
            return None
        document = json.loads(raw)
        return dict(document["jwks"]), int(document["fetched_at"])

    async def cache_jwks(self, client_id: str, jwks: dict[str, Any], ttl: int) -> None:
        """Keep a fetched JWK Set for `ttl` seconds."""
        document = {"jwks": jwks, "fetched_at": int(time.time())}
        await self._redis.set(keys.client_jwks(client_id), json.dumps(document), ex=ttl)
