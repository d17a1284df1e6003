"""Userinfo without idpyoidc on the hot path (OIDC Core 5.3, 5.4).

Userinfo changes nothing, and running idpyoidc for it meant verifying the
access token twice and rebuilding the whole grant as objects. Here the token
is verified once, the grant is read as JSON, and the claims of the token's
scopes are released, by the same scope-to-claims table idpyoidc uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from idpyoidc.server.scopes import SCOPE2CLAIMS

from .. import fastjson
from .state import token_digest

ACCESS_TOKEN = "access_token"  # noqa: S105 - a token class name


def find_access_token(
    document: bytes, access_token: str, now: int
) -> dict[str, Any] | None:
    """Find the stored record of a live access token in a grant document."""
    grant: dict[str, Any] = fastjson.loads(document)
    if grant.get("revoked"):
        return None
    digest = token_digest(access_token)
    for entry in grant.get("issued_token", ()):
        for token in entry.values():
            if token.get("value") != digest:
                continue
            if not _live(token, now):
                return None
            token.setdefault("scope", grant.get("scope") or [])
            token["sub"] = grant.get("sub")
            return dict(token)
    return None


def _live(token: Mapping[str, Any], now: int) -> bool:
    if token.get("token_class") != ACCESS_TOKEN or token.get("revoked"):
        return False
    expires_at = token.get("expires_at") or 0
    return not expires_at or expires_at > now


def released_claims(
    claims: Mapping[str, Any], scopes: Iterable[str], sub: str
) -> dict[str, Any]:
    """Select the user's claims that the scopes release, always with `sub`."""
    names = {name for scope in scopes for name in SCOPE2CLAIMS.get(scope, ())}
    released = {name: value for name, value in claims.items() if name in names}
    released["sub"] = sub
    return released
