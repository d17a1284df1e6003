"""id_token_hint: who the client believes is signed in (OIDC Core 3.1.2.1)."""

from __future__ import annotations

from typing import Any

from cryptojwt import KeyJar
from cryptojwt.jws.jws import JWS

from .. import errors
from .config import SIGNING_ALGS


def hinted_subject(hint: str, keyjar: KeyJar, issuer: str) -> str:
    """Return the sub of an ID token we issued; raise InvalidRequest otherwise.

    The signature and issuer are checked, the expiry is not: a hint is often
    an ID token that expired long ago, and it proves no login by itself.
    """
    claims = _verified_claims(hint, keyjar, issuer)
    if claims.get("iss") != issuer:
        raise errors.InvalidRequest("id_token_hint was not issued by this server")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise errors.InvalidRequest("id_token_hint has no sub claim")
    return subject


def _verified_claims(hint: str, keyjar: KeyJar, issuer: str) -> dict[str, Any]:
    keys = keyjar.get_verify_key(issuer_id=issuer)
    try:
        # alg restricts the accepted algorithms, which also rejects "none".
        claims = JWS(alg=SIGNING_ALGS).verify_compact(hint, keys=keys)
    except Exception:  # noqa: BLE001 - any failure means "not a valid hint"
        raise errors.InvalidRequest(
            "id_token_hint is not an ID token signed by this server"
        ) from None
    if not isinstance(claims, dict):
        raise errors.InvalidRequest("id_token_hint has no JSON claims")
    return claims
