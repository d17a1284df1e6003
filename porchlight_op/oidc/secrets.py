"""Secret material that every worker must share, loaded from one source.

idpyoidc generates several of these at random per `Server()` when they are not
configured (signing keys, the session-id key and the `sub` salt, the code and
refresh-token keys, the cookie keys, `symkey`). Left random, each worker would
mint codes, tokens and subjects the others cannot read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptojwt.key_jar import build_keyjar

# RSA for RS256 (what every RP supports) and P-256 for the cheaper ES256.
SIGNING_KEY_DEFS = [
    {"type": "RSA", "key": "", "use": ["sig"]},
    {"type": "EC", "crv": "P-256", "use": ["sig"]},
]

GetOrCreate = Callable[[str, Callable[[], bytes]], Awaitable[bytes]]


@dataclass(frozen=True)
class ServerSecrets:
    """Everything idpyoidc would otherwise pick at random per process."""

    signing_jwks: dict[str, Any]
    session_key: bytes
    session_salt: bytes
    code_key: bytes
    refresh_key: bytes
    cookie_sign_key: bytes
    cookie_enc_key: bytes
    symkey: str


def new_signing_jwks() -> bytes:
    """Generate a private JWKS with one RSA-2048 and one P-256 signing key."""
    keyjar = build_keyjar(SIGNING_KEY_DEFS)
    return json.dumps(keyjar.export_jwks(private=True)).encode()


def _random(size: int) -> Callable[[], bytes]:
    return lambda: os.urandom(size)


async def load_server_secrets(get_or_create: GetOrCreate) -> ServerSecrets:
    """Read the shared secrets, creating each once with set-if-absent semantics.

    `get_or_create(name, factory)` returns the stored value, or stores
    `factory()` when none exists; concurrent first starts agree on one value.
    """
    jwks = await get_or_create("signing-jwks", new_signing_jwks)
    return ServerSecrets(
        signing_jwks=json.loads(jwks),
        session_key=await get_or_create("session-key", _random(32)),
        session_salt=await get_or_create("session-salt", _random(16)),
        code_key=await get_or_create("code-key", _random(32)),
        refresh_key=await get_or_create("refresh-key", _random(32)),
        cookie_sign_key=await get_or_create("cookie-sign-key", _random(32)),
        cookie_enc_key=await get_or_create("cookie-enc-key", _random(32)),
        symkey=(
            await get_or_create("symkey", lambda: os.urandom(18).hex().encode())
        ).decode(),
    )
