"""JWT access tokens in the shape of RFC 9068, for users and for clients.

idpyoidc mints user access tokens through `AccessTokenJWT`, the token handler
class that oidc/config.py configures. These tokens carry idpyoidc's encrypted
session id (`sid`), so that the grant can be found again. Client credentials
tokens have no user and no grant: they are self-contained, and their
revocation is a record in Redis (store/token_records.py).
"""

from __future__ import annotations

import time
from typing import Any

from cryptojwt import JWT, KeyJar
from cryptojwt.exception import JWKESTException
from cryptojwt.jws.exception import JWSException
from idpyoidc.server.token.jwt_token import JWTToken

# RFC 9068 2.1: the media type of a JWT access token, in the typ header.
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type
ACCESS_TOKEN_ALG = "ES256"  # noqa: S105 - an algorithm name


def _scope_string(scope: Any) -> str:
    if isinstance(scope, str):
        return scope
    return " ".join(str(item) for item in scope or ())


class AccessTokenJWT(JWTToken):  # type: ignore[misc]
    """idpyoidc's JWT access token, signed with typ at+jwt (RFC 9068 2.1).

    idpyoidc 5.0 signs with typ JWT and a scope list, but RFC 9068 2.2 requires
    typ at+jwt, a space-separated scope and an audience.
    """

    def __call__(
        self,
        session_id: str | None = "",
        token_class: str | None = "",
        usage_rules: dict[str, Any] | None = None,
        profile: Any = None,
        with_jti: bool | None = None,
        **payload: Any,
    ) -> str:
        claims = {
            name: value
            for name, value in payload.items()
            if value not in (None, "", [], {})
        }
        claims["scope"] = _scope_string(payload.get("scope"))
        claims["aud"] = payload.get("aud") or [self.issuer]
        claims["sid"] = session_id
        claims["token_class"] = token_class or self.token_class
        lifetime = (usage_rules or {}).get("expires_in", self.lifetime)

        signer = JWT(
            key_jar=self.upstream_get("attribute", "keyjar"),
            iss=self.issuer,
            lifetime=lifetime,
            sign_alg=self.alg,
        )
        signer.with_jti = True
        token: str = signer.pack(claims, jws_headers={"typ": ACCESS_TOKEN_TYP})
        return token


def mint_client_token(
    keyjar: KeyJar, issuer: str, client_id: str, scope: str, lifetime: int
) -> str:
    """Sign an access token for a client acting on its own behalf (RFC 6749 4.4).

    `sub` is the client_id (RFC 9068 2.2), and there is no `sid`, so the
    userinfo endpoint, which needs a user, rejects the token.
    """
    signer = JWT(key_jar=keyjar, iss=issuer, lifetime=lifetime, sign_alg="ES256")
    signer.with_jti = True
    claims = {"sub": client_id, "client_id": client_id, "aud": [issuer]}
    if scope:
        claims["scope"] = scope
    token: str = signer.pack(claims, jws_headers={"typ": ACCESS_TOKEN_TYP})
    return token


def read_access_token(keyjar: KeyJar, issuer: str, token: str) -> dict[str, Any] | None:
    """Verify a JWT access token of ours; return its claims, or None.

    None for a bad signature, another issuer, or an expired token. Revocation
    is not checked here.
    """
    verifier = JWT(key_jar=keyjar, allowed_sign_algs=[ACCESS_TOKEN_ALG])
    try:
        claims = dict(verifier.unpack(token))
    except (JWKESTException, JWSException, ValueError, KeyError, TypeError):
        return None
    if claims.get("iss") != issuer:
        return None
    expiry = claims.get("exp")
    if not isinstance(expiry, int) or expiry <= int(time.time()):
        return None
    return claims


def is_client_token(claims: dict[str, Any]) -> bool:
    """Tell whether verified claims belong to a client credentials token."""
    return "sid" not in claims and claims.get("sub") == claims.get("client_id")
