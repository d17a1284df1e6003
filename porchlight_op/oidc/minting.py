"""Token values for the grant-document paths, built once per worker.

The values match what idpyoidc 5.0 mints through the classes oidc/config.py
configures: `AccessTokenJWT` (oidc/access_tokens.py), the Fernet refresh
token handler and `PorchlightIDToken` (oidc/id_token.py). The claims come
from the grant document instead of idpyoidc objects.
"""

from __future__ import annotations

import secrets
from typing import Any

from idpyoidc.server import Server

from ..models import Client
from .access_tokens import ACCESS_TOKEN_ALG, ACCESS_TOKEN_TYP
from .grant_documents import Document
from .id_token import LOGIN_SESSION_FIELD, at_hash
from .signing import JwsSigner

ID_TOKEN_ALG = "RS256"  # noqa: S105 - what oidc/clients.py registers for every client
_EVENT = "idpyoidc.server.authn_event.AuthnEvent"
_REQUEST = "idpyoidc.message.oidc.AuthorizationRequest"


def authentication_event(document: Document) -> dict[str, Any]:
    """Return the grant's authentication event fields, or an empty dict."""
    event = document.get("authentication_event") or {}
    fields: dict[str, Any] = event.get(_EVENT) or {}
    return fields


def authorization_request(document: Document) -> dict[str, Any]:
    """Return the grant's authorization request parameters, or an empty dict."""
    request = document.get("authorization_request") or {}
    fields: dict[str, Any] = request.get(_REQUEST) or {}
    return fields


def is_known_shape(document: Document) -> bool:
    """Tell whether the event and request use the classes read above."""
    event = document.get("authentication_event")
    request = document.get("authorization_request")
    return (event is None or set(event) == {_EVENT}) and (
        request is not None and set(request) == {_REQUEST}
    )


class TokenMinter:
    """Mints access tokens, refresh tokens and ID tokens from grant documents."""

    def __init__(self, server: Server, issuer: str) -> None:
        handlers = server.context.session_manager.token_handler.handler
        self._issuer = issuer
        self._refresh = handlers["refresh_token"]
        self._id_token_lifetime = int(handlers["id_token"].lifetime)
        self._access_signer = JwsSigner(server.keyjar, issuer, ACCESS_TOKEN_ALG)
        self._id_signer = JwsSigner(server.keyjar, issuer, ID_TOKEN_ALG)

    def access_token(
        self,
        document: Document,
        session_id: str,
        scope: list[str],
        lifetime: int,
        now: int,
    ) -> str:
        """Sign a JWT access token (RFC 9068) carrying the grant's session id."""
        claims: dict[str, Any] = {"scope": " ".join(scope)}
        claims["aud"] = list(document.get("resources") or []) or [self._issuer]
        claims["jti"] = secrets.token_hex(16)
        client_id = authorization_request(document).get("client_id")
        if client_id:
            claims["client_id"] = client_id
            if document.get("sub"):
                claims["sub"] = document["sub"]
        claims["sid"] = session_id
        claims["token_class"] = "access_token"  # noqa: S105 - a token class name
        claims["iss"] = self._issuer
        claims["iat"] = now
        if lifetime:
            claims["exp"] = now + lifetime
        return self._access_signer.sign(claims, typ=ACCESS_TOKEN_TYP)

    def refresh_token(self, session_id: str) -> str:
        """Encrypt a new refresh token for the session, with idpyoidc's handler."""
        # No token_class argument: idpyoidc's DefaultToken labels the token an
        # authorization code when one is passed.
        value: str = self._refresh(session_id=session_id)
        return value

    def id_token(
        self,
        document: Document,
        client: Client,
        scope: list[str],
        access_token: str,
        now: int,
    ) -> str:
        """Sign an ID token (OIDC Core 2) for the grant's login."""
        event = authentication_event(document)
        request = authorization_request(document)

        claims: dict[str, Any] = {"sub": document.get("sub")}
        if event.get("authn_time") and (
            "max_age" in request or client.require_auth_time
        ):
            claims["auth_time"] = event["authn_time"]
        if event.get("authn_info"):
            claims["acr"] = event["authn_info"]
        claims["scope"] = list(scope)
        claims["jti"] = secrets.token_hex(16)
        # An at_hash over the JWT would not match an opaque token, which the
        # client receives in its place later.
        if client.access_token_format != "opaque":  # noqa: S105 - a format name
            claims["at_hash"] = at_hash(access_token, ID_TOKEN_ALG)
        # Refreshed ID tokens repeat the login's nonce, as idpyoidc's do, and
        # RPs such as Authlib's check it on every ID token.
        if "nonce" in request:
            claims["nonce"] = request["nonce"]
        if event.get(LOGIN_SESSION_FIELD):
            claims["sid"] = event[LOGIN_SESSION_FIELD]
        if event.get("amr"):
            claims["amr"] = list(event["amr"])

        claims["iss"] = self._issuer
        claims["iat"] = now
        claims["exp"] = now + self._id_token_lifetime
        resources = list(document.get("resources") or [])
        if resources and client.client_id not in resources:
            claims["aud"] = [client.client_id, *resources]
        else:
            claims["aud"] = resources or [client.client_id]
        return self._id_signer.sign(claims)
