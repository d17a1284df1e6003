"""RP-Initiated Logout 1.0 checks and Back-Channel Logout 1.0 logout tokens.

Nothing here reads an HTTP request: the web layer passes the parameters in and
renders the outcome. Ending a login session revokes the grants it issued and
queues one logout token per client that registered a back-channel URI.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptojwt import KeyJar
from cryptojwt.jws.jws import factory
from cryptojwt.jwt import JWT

from .. import errors
from ..log import OIDC, security_event
from ..models import Client
from ..store.clients import ClientStore
from ..store.login_sessions import LoginSessionGrants
from ..store.logout_jobs import LogoutJob, LogoutJobs
from .provider import _add_query

logger = logging.getLogger(OIDC)

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 - a media type, not a secret
# Seconds a logout token stays valid; section 2.4 recommends a short lifetime.
LOGOUT_TOKEN_LIFETIME = 120
SIGNING_ALG = "RS256"


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request (RP-Initiated Logout 1.0 section 2)."""

    client: Client | None
    hint_sub: str | None  # the sub of a valid id_token_hint
    post_logout_redirect_uri: str | None
    state: str | None
    params: Mapping[str, str]  # as received, for the confirmation form

    def redirect_location(self) -> str | None:
        """Return the post-logout redirect with state, or None for our own page."""
        if self.post_logout_redirect_uri is None:
            return None
        values = {"state": self.state} if self.state is not None else {}
        return _add_query(self.post_logout_redirect_uri, values)


class Logout:
    """Checks logout requests, ends login sessions and signs logout tokens."""

    def __init__(
        self,
        keyjar: KeyJar,
        issuer: str,
        clients: ClientStore,
        login_sessions: LoginSessionGrants,
        jobs: LogoutJobs,
    ) -> None:
        self._keyjar = keyjar
        self._issuer = issuer
        self._clients = clients
        self._login_sessions = login_sessions
        self._jobs = jobs

    async def check_request(self, params: Mapping[str, str]) -> LogoutRequest:
        """Validate the parameters; raise UnverifiedClient (an error page)."""
        hint = params.get("id_token_hint")
        claims = self._verify_hint(hint) if hint else None
        client_id = params.get("client_id") or _single_audience(claims)
        if claims is not None and client_id and client_id not in _audience(claims):
            raise errors.UnverifiedClient(
                "The id_token_hint was not issued to this client_id."
            )

        client = await self._clients.get(client_id) if client_id else None
        if client_id and client is None:
            raise errors.UnverifiedClient("The client is not registered here.")

        uri = params.get("post_logout_redirect_uri")
        if uri is not None:
            if client is None:
                raise errors.UnverifiedClient(
                    "A post_logout_redirect_uri needs a client_id or id_token_hint."
                )
            if uri not in client.post_logout_redirect_uris:
                raise errors.UnverifiedClient(
                    "The post_logout_redirect_uri is not registered for this client."
                )

        hint_sub = claims.get("sub") if claims is not None else None
        return LogoutRequest(
            client=client,
            hint_sub=hint_sub if isinstance(hint_sub, str) else None,
            post_logout_redirect_uri=uri,
            state=params.get("state"),
            params=dict(params),
        )

    def _verify_hint(self, hint: str) -> dict[str, Any]:
        """Check the hint's signature and issuer; an expired ID token is accepted."""
        invalid = errors.UnverifiedClient("The id_token_hint is invalid.")
        keys = self._keyjar.get_verify_key("RSA", issuer_id=self._issuer)
        try:
            token = factory(hint, alg=SIGNING_ALG)
            if token is None:
                raise invalid
            claims = token.verify_compact(hint, keys, sigalg=SIGNING_ALG)
        except Exception:  # noqa: BLE001 - cryptojwt raises many unrelated types
            raise invalid from None
        if not isinstance(claims, dict):
            raise invalid
        if claims.get("iss") != self._issuer or not claims.get("sub"):
            raise invalid
        return claims

    async def end_session(self, sub: str, sid: str) -> list[str]:
        """Revoke the login session's grants and queue back-channel logouts.

        Returns the ids of the clients whose grants were revoked.
        """
        grants = await self._login_sessions.revoke_all(sub, sid)
        client_ids = sorted({grant.client_id for grant in grants})
        notified = 0
        for client_id in client_ids:
            client = await self._clients.get(client_id)
            if client is None or client.backchannel_logout_uri is None:
                continue
            job = LogoutJob(secrets.token_urlsafe(16), client_id, sub, sid)
            await self._jobs.add(job)
            notified += 1
        security_event(
            "logout",
            sub=sub,
            grants_revoked=len(grants),
            clients=",".join(client_ids) or "-",
            backchannel_queued=notified,
        )
        return client_ids

    def logout_token(self, client: Client, job: LogoutJob) -> str:
        """Sign a logout token for one client (Back-Channel Logout 1.0 section 2.4)."""
        payload = {
            "sub": job.sub,
            "sid": job.sid,
            "jti": job.jti,
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if not job.sid:
            # Grants that outlived their login: the token names the user alone.
            del payload["sid"]
        signer = JWT(
            self._keyjar,
            iss=self._issuer,
            lifetime=LOGOUT_TOKEN_LIFETIME,
            sign_alg=SIGNING_ALG,
        )
        token: str = signer.pack(
            payload, recv=client.client_id, jws_headers={"typ": LOGOUT_TOKEN_TYPE}
        )
        return token


def _audience(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [item for item in aud if isinstance(item, str)]
    return []


def _single_audience(claims: Mapping[str, Any] | None) -> str | None:
    if claims is None:
        return None
    audience = _audience(claims)
    return audience[0] if len(audience) == 1 else None
