"""Access token formats, client credentials, revocation and introspection.

Tokens are found the way the token endpoint finds them: idpyoidc's token
handler decodes the grant path (uid, client_id, grant_id) from the token, and
the grant read from Redis shows whether the token is still active. An opaque
access token is first expanded to the JWT it stands for; a client
credentials token has no grant and is checked against its revocation record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from idpyoidc.server import Server

from .. import errors
from ..log import security_event
from ..models import Client
from ..settings import Settings
from ..store.token_records import TokenRecords
from .access_tokens import is_client_token, mint_client_token, read_access_token
from .state import StateRunner

Resolver = Callable[[str, str], "tuple[str, str, str] | None"]

# Client credentials tokens cannot be revoked through a grant, and no user
# is present to end a session, so they live at most this many seconds.
CLIENT_TOKEN_MAX_LIFETIME = 900
# Scopes that only make sense with a user.
USER_SCOPES = ("openid", "offline_access")
TOKEN_KINDS = ("access_token", "refresh_token")
INACTIVE: dict[str, Any] = {"active": False}


def lookup_order(hint: str | None) -> tuple[str, ...]:
    """Return the token kinds to try, the hinted one first (RFC 7009 2.1, 7662 2.1).

    Unknown hints are ignored, as both RFCs allow: every kind is tried.
    """
    if hint == "refresh_token":
        return ("refresh_token", "access_token")
    return TOKEN_KINDS


class TokenService:
    """Issues, expands, revokes and introspects tokens for authenticated clients."""

    def __init__(
        self,
        server: Server,
        settings: Settings,
        runner: StateRunner,
        records: TokenRecords,
        resolve: Resolver,
    ) -> None:
        self._server = server
        self._issuer = settings.issuer
        self._lifetime = min(settings.access_token_lifetime, CLIENT_TOKEN_MAX_LIFETIME)
        self._runner = runner
        self._records = records
        self._resolve = resolve

    # -- issuing --

    async def client_credentials(
        self, client: Client, form: Mapping[str, str]
    ) -> dict[str, Any]:
        """Issue an access token to the client itself (RFC 6749 4.4)."""
        if client.is_public or "client_credentials" not in client.grant_types:
            raise errors.UnauthorizedClient("the client may not use client_credentials")
        allowed = [scope for scope in client.scope if scope not in USER_SCOPES]
        requested = form.get("scope")
        scopes = requested.split() if requested is not None else allowed
        if any(scope not in allowed for scope in scopes):
            raise errors.InvalidScope("the requested scope is not allowed")

        scope = " ".join(dict.fromkeys(scopes))
        token = mint_client_token(
            self._server.keyjar,
            self._issuer,
            client.client_id,
            scope,
            self._lifetime,
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._lifetime,
        }
        if scope:
            body["scope"] = scope
        security_event("client_token_issued", client_id=client.client_id)
        return await self.finish(client, body)

    async def finish(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """Swap the access token for an opaque one when the client asks for that."""
        token = body.get("access_token")
        if client.access_token_format != "opaque" or not isinstance(token, str):  # noqa: S105
            return body
        lifetime = int(body.get("expires_in") or self._lifetime)
        body["access_token"] = await self._records.wrap(token, lifetime)
        return body

    async def expand(self, token: str) -> str | None:
        """Return the JWT behind an access token: itself, or what it refers to."""
        if token.count(".") == 2:
            return token
        return await self._records.unwrap(token)

    # -- revocation (RFC 7009) --

    async def revoke(self, client: Client, token: str, hint: str | None) -> None:
        """Revoke the token if it is the client's; the response is the same if not."""
        for kind in lookup_order(hint):
            if kind == "access_token":
                found = await self._revoke_access_token(client, token)
            else:
                found = await self._revoke_refresh_token(client, token)
            if found:
                return

    async def _revoke_access_token(self, client: Client, token: str) -> bool:
        jwt = await self.expand(token)
        claims = read_access_token(self._server.keyjar, self._issuer, jwt or "")
        if jwt is None or claims is None:
            return False
        if claims.get("client_id") != client.client_id:
            return True
        if jwt != token:
            await self._records.discard(token)
        if is_client_token(claims):
            remaining = int(claims["exp"]) - int(time.time())
            await self._records.revoke_jti(str(claims.get("jti")), remaining)
        else:
            path = self._resolve(jwt, "access_token")
            if path is None or path[1] != client.client_id:
                return True
            await self._change_grant(path, jwt, revoke_grant=False)
        security_event("access_token_revoked", client_id=client.client_id)
        return True

    async def _revoke_refresh_token(self, client: Client, token: str) -> bool:
        path = self._resolve(token, "refresh_token")
        if path is None:
            return False
        if path[1] != client.client_id:
            return True
        await self._change_grant(path, token, revoke_grant=True)
        security_event("refresh_token_revoked", client_id=client.client_id, sub=path[0])
        return True

    async def _change_grant(
        self, path: tuple[str, str, str], token: str, revoke_grant: bool
    ) -> None:
        uid, client_id, grant_id = path
        name = f"{uid};;{client_id};;{grant_id}"

        def call() -> None:
            grant = self._server.context.session_manager.db.get(name)
            issued = grant.get_token(token) if grant is not None else None
            if issued is None:
                return
            if revoke_grant:
                # The grant and with it every token it produced: RFC 7009 2.1
                # lets revoking a refresh token end its access tokens too.
                grant.revoke()
            else:
                issued.revoke()

        await self._runner.run(uid, client_id, grant_id, call, presented=token)

    # -- introspection (RFC 7662) --

    async def introspect(
        self, client: Client, token: str, hint: str | None
    ) -> dict[str, Any]:
        """Describe the token if it is active and the client's, else inactive."""
        for kind in lookup_order(hint):
            if kind == "access_token":
                answer = await self._inspect_access_token(client, token)
            else:
                answer = await self._inspect_refresh_token(client, token)
            if answer is not None:
                return answer
        return dict(INACTIVE)

    async def _inspect_access_token(
        self, client: Client, token: str
    ) -> dict[str, Any] | None:
        jwt = await self.expand(token)
        claims = read_access_token(self._server.keyjar, self._issuer, jwt or "")
        if jwt is None or claims is None:
            return None
        if claims.get("client_id") != client.client_id:
            return dict(INACTIVE)
        if is_client_token(claims):
            if await self._records.is_revoked(str(claims.get("jti"))):
                return dict(INACTIVE)
        elif not await self._grant_token_active(jwt, "access_token", client):
            return dict(INACTIVE)
        answer = {"active": True, "token_type": "Bearer"}
        for name in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti"):
            if name in claims:
                answer[name] = claims[name]
        return answer

    async def _inspect_refresh_token(
        self, client: Client, token: str
    ) -> dict[str, Any] | None:
        path = self._resolve(token, "refresh_token")
        if path is None:
            return None
        uid, client_id, grant_id = path
        if client_id != client.client_id:
            return dict(INACTIVE)
        grant = await self._runner.peek(uid, client_id, grant_id, presented=token)
        issued = grant.get_token(token) if grant is not None else None
        if grant is None or issued is None or not issued.is_active():
            return dict(INACTIVE)
        answer: dict[str, Any] = {
            "active": True,
            "scope": " ".join(issued.scope or grant.scope),
            "client_id": client_id,
            "sub": uid,
            "iss": self._issuer,
            "aud": [client_id],
        }
        if issued.expires_at:
            answer["exp"] = issued.expires_at
        if issued.issued_at:
            answer["iat"] = issued.issued_at
        return answer

    async def _grant_token_active(self, token: str, kind: str, client: Client) -> bool:
        path = self._resolve(token, kind)
        if path is None or path[1] != client.client_id:
            return False
        uid, client_id, grant_id = path
        grant = await self._runner.peek(uid, client_id, grant_id, presented=token)
        issued = grant.get_token(token) if grant is not None else None
        return issued is not None and bool(issued.is_active())
