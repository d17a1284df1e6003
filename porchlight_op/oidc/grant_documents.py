"""idpyoidc's stored grant document, read and changed as plain JSON.

A grant is stored as the canonical JSON of idpyoidc 5.0's `Grant.dump()` with
token values replaced by digests (oidc/state.py). The functions here apply the
rules of idpyoidc's `Grant` and `SessionToken` classes (`is_active`,
`find_scope`, `mint_token`'s bookkeeping) to that document directly, so the
token endpoint need not rebuild the grant as objects. What they write keeps
the shape idpyoidc dumps, so every other path still loads it with idpyoidc.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from .. import fastjson
from .state import EXPIRY_MARGIN

Document = dict[str, Any]
Token = dict[str, Any]

_TOKEN_MODULE = "idpyoidc.server.session.token."  # noqa: S105 - a module path
AUTHORIZATION_CODE = _TOKEN_MODULE + "AuthorizationCode"
ACCESS_TOKEN = _TOKEN_MODULE + "AccessToken"
REFRESH_TOKEN = _TOKEN_MODULE + "RefreshToken"
ID_TOKEN = _TOKEN_MODULE + "IDToken"
TOKEN_CLASSES = {
    "authorization_code": AUTHORIZATION_CODE,
    "access_token": ACCESS_TOKEN,
    "refresh_token": REFRESH_TOKEN,
    "id_token": ID_TOKEN,
}
# Release points whose claims idpyoidc would put into tokens. A grant that
# names claims for them needs idpyoidc's claims machinery.
TOKEN_RELEASE_POINTS = ("access_token", "id_token")


def load(data: bytes) -> Document:
    """Parse a stored grant document."""
    document: Document = fastjson.loads(data)
    return document


def dump(document: Document) -> bytes:
    """Serialise a grant document canonically, as oidc/state.py stores it."""
    return fastjson.dumps_canonical(document)


def is_plain(document: Document) -> bool:
    """Tell whether the grant uses only what the document functions handle.

    That is: no claims released in tokens, no DPoP binding or other extras,
    idpyoidc's default token classes, lifetimes for access and refresh
    tokens in the grant's usage rules, and only the four token kinds above.
    """
    claims = document.get("claims") or {}
    if any(claims.get(point) for point in TOKEN_RELEASE_POINTS):
        return False
    if document.get("extra") or document.get("authorization_details"):
        return False
    token_map = document.get("token_map")
    if token_map is not None and token_map != TOKEN_CLASSES:
        return False
    if not (lifetime(document, "access_token") and lifetime(document, "refresh_token")):
        # idpyoidc would fall back to its token handlers' lifetimes.
        return False
    known = set(TOKEN_CLASSES.values())
    return all(
        len(entry) == 1 and next(iter(entry)) in known
        for entry in document.get("issued_token", ())
    )


def tokens(document: Document) -> Iterator[tuple[str, Token]]:
    """Yield (class name, token) for every token the grant holds."""
    for entry in document.get("issued_token", ()):
        yield from entry.items()


def find(document: Document, digest: str) -> tuple[str, Token] | None:
    """Return (class name, token) of the token stored with this value digest."""
    for name, token in tokens(document):
        if token.get("value") == digest:
            return name, token
    return None


def is_active(item: dict[str, Any], now: int) -> bool:
    """Apply idpyoidc's `Item.is_active` to a grant or token document."""
    max_usage = (item.get("usage_rules") or {}).get("max_usage")
    if max_usage is not None and item.get("used", 0) >= max_usage:
        return False
    if item.get("revoked"):
        return False
    not_before = item.get("not_before") or 0
    if not_before and now < not_before:
        return False
    expires_at = item.get("expires_at") or 0
    return not (expires_at and now > expires_at)


def find_scope(document: Document, based_on: str | None) -> list[str]:
    """Apply idpyoidc's `Grant.find_scope`: the nearest ancestor's scope."""
    seen: set[str] = set()
    while based_on and based_on not in seen:
        seen.add(based_on)
        found = find(document, based_on)
        if found is None:
            break
        token = found[1]
        if token.get("scope"):
            return list(token["scope"])
        based_on = token.get("based_on")
    return list(document.get("scope") or [])


def new_token(
    token_class: str,
    digest: str,
    based_on: str | None,
    scope: list[str],
    usage_rules: dict[str, Any],
    lifetime: int,
    now: int,
) -> Token:
    """Build a token entry with the fields idpyoidc's dump gives one.

    `lifetime` is in seconds, 0 for none. The id is random where idpyoidc
    takes uuid1().hex. Both are 32 hex digits, and nothing reads them back.
    """
    token: Token = {
        "claims": {},
        "expires_at": now + lifetime if lifetime else 0,
        "id": secrets.token_hex(16),
        "issued_at": now,
        "name": TOKEN_CLASSES[token_class].rsplit(".", 1)[1],
        "not_before": 0,
        "resources": [],
        "revoked": False,
        "scope": list(scope),
        "token_class": token_class,
        "usage_rules": copy_rules(usage_rules),
        "used": 0,
        "value": digest,
    }
    if based_on is not None:
        token["based_on"] = based_on
    if token_class == "access_token":  # noqa: S105 - a token class name
        token["token_type"] = "Bearer"  # noqa: S105
    return token


def copy_rules(usage_rules: dict[str, Any]) -> dict[str, Any]:
    """Copy usage rules (flat values and lists) so no two tokens share them."""
    return {
        name: list(value) if isinstance(value, list) else value
        for name, value in usage_rules.items()
    }


def lifetime(document: Document, token_class: str) -> int:
    """Return the grant's lifetime for a token class, as idpyoidc's minting reads it."""
    rules = (document.get("usage_rules") or {}).get(token_class) or {}
    return int(rules.get("expires_in") or 0)


def add(document: Document, token_class: str, token: Token) -> None:
    """Append a token to the grant and count it, as `Grant.mint_token` does."""
    issued = document.setdefault("issued_token", [])
    issued.append({TOKEN_CLASSES[token_class]: token})
    document["used"] = document.get("used", 0) + 1


def revoke_access_tokens(document: Document, keep: str) -> None:
    """Revoke every access token of the grant except the one with digest `keep`."""
    for _, token in tokens(document):
        if token.get("token_class") == "access_token" and token.get("value") != keep:
            token["revoked"] = True


def prune(document: Document, now: int) -> None:
    """Drop revoked, expired and ID tokens, as oidc/state.py's prune_grant does."""
    live = [
        entry
        for entry in document.get("issued_token", ())
        if _worth_keeping(next(iter(entry.values())), now)
    ]
    if live:
        document["issued_token"] = live
    else:
        # idpyoidc's dump leaves out an empty token list.
        document.pop("issued_token", None)


def _worth_keeping(token: Token, now: int) -> bool:
    if token.get("revoked") or token.get("token_class") == "id_token":
        return False
    expires_at = token.get("expires_at") or 0
    return not (expires_at and expires_at <= now)


def ttl(document: Document, now: int) -> int:
    """Seconds the grant must live, as oidc/state.py's grant_ttl computes it."""
    if document.get("revoked"):
        return 0
    expiries = [
        token["expires_at"] for _, token in tokens(document) if token.get("expires_at")
    ]
    grant_expiry = document.get("expires_at") or 0
    if grant_expiry:
        expiries = [min(expiry, grant_expiry) for expiry in expiries]
    if not expiries:
        return 0
    remaining = max(expiries) - now
    return remaining + EXPIRY_MARGIN if remaining > 0 else 0
