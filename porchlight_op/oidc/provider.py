"""The protocol facade: authorization, token and userinfo over idpyoidc.

Each method runs porchlight's own checks first (client, redirect URI, PKCE,
client authentication), then idpyoidc on the user's state loaded from Redis,
and turns idpyoidc's error replies into `OAuthError` exceptions, so no caller
inspects an `error` key.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptojwt.key_jar import IssuerNotFound
from idpyoidc.message import Message
from idpyoidc.server import Server
from idpyoidc.server.authn_event import create_authn_event

from .. import errors
from ..log import OIDC, security_event
from ..models import Client, User
from ..settings import Settings
from ..store import keys as store_keys
from ..store.clients import ClientStore
from ..store.login_sessions import LoginSessionGrants, SessionGrant
from ..store.sessions import StoredNode
from ..store.token_records import TokenRecords
from . import clients as client_rules
from . import request_rules
from . import userinfo as userinfo_rules
from .access_tokens import ACCESS_TOKEN_ALG
from .claims import ClaimsCache
from .client_assertions import ASYMMETRIC_ALGS, SYMMETRIC_ALGS, AssertionVerifier
from .config import SCOPES
from .context import authenticated_client
from .fast_grants import FastGrants, GrantPath, covers_code, covers_refresh
from .hints import hinted_subject
from .id_token import LOGIN_SESSION_FIELD
from .request_rules import CODE_VERIFIER
from .signing import CannotVerify, JwsVerifier
from .state import StateRunner
from .token_management import TokenService

logger = logging.getLogger(OIDC)

ACR_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105 - an ACR name
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
    "name", "given_name", "family_name", "middle_name", "nickname",
    "preferred_username", "profile", "picture", "website", "email", "email_verified",
    "gender", "birthdate", "zoneinfo", "locale", "phone_number",
    "phone_number_verified", "address", "updated_at",
]  # fmt: skip
CONFIDENTIAL_AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
]
TOKEN_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
ASSERTION_ALGS = [*ASYMMETRIC_ALGS, *SYMMETRIC_ALGS]
# The form parameter that carries the code or token of each grant type the
# grant-document path serves, and the idpyoidc token handler that decodes it.
PRESENTED_PARAMETER = {
    "authorization_code": ("code", "authorization_code"),
    "refresh_token": ("refresh_token", "refresh_token"),
}
# Number of decrypted session ids each worker keeps. An entry takes a few
# hundred bytes.
SESSION_PATH_CACHE = 4096


@dataclass(frozen=True)
class Authentication:
    """A completed login: the user, its time and methods (OIDC Core 2)."""

    sub: str
    auth_time: int
    amr: tuple[str, ...] = ("pwd",)
    sid: str = ""  # the browser login session; empty when there is none


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request whose client and redirect_uri are verified."""

    client: Client
    redirect_uri: str
    params: Mapping[str, str]
    message: Message
    # The sub of a verified id_token_hint, when the request had one.
    hinted_sub: str | None = None

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def prompt(self) -> set[str]:
        return set(self.params.get("prompt", "").split())

    @property
    def max_age(self) -> int | None:
        value = self.params.get("max_age")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Prefetched:
    """An authenticated client and the grant its code or token points to, as read."""

    client: Client
    path: GrantPath
    grant: StoredNode


class AuthorizationError(errors.PorchlightError):
    """An error the user agent is sent back to the client with."""

    def __init__(self, request: AuthorizationRequest, error: errors.OAuthError) -> None:
        super().__init__(error.error)
        self.request = request
        self.error = error


class Provider:
    """The protocol facade, one per worker, around an idpyoidc Server."""

    def __init__(
        self,
        server: Server,
        settings: Settings,
        runner: StateRunner,
        clients: ClientStore,
        claims: ClaimsCache,
        records: TokenRecords,
        login_sessions: LoginSessionGrants | None = None,
    ) -> None:
        self.server = server
        self.settings = settings
        self.issuer = settings.issuer
        self._runner = runner
        self._clients = clients
        self._claims = claims
        self._login_sessions = login_sessions
        self._assertions = AssertionVerifier(
            records, self.issuer, f"{self.issuer}/token"
        )
        self.tokens = TokenService(server, settings, runner, records, self._resolve)
        self._access_verifier = JwsVerifier(
            server.keyjar, self.issuer, ACCESS_TOKEN_ALG
        )
        # A session id always decrypts to the same path, and decrypting costs
        # more than a lookup. Failures raise, so they are not cached.
        self._jwks: tuple[Any, dict[str, Any]] | None = None
        self._grant_path = functools.lru_cache(maxsize=SESSION_PATH_CACHE)(
            self._decrypt_grant_path
        )
        # Serves code redemption and refresh on the grant document, and idpyoidc
        # serves what it does not cover. None turns it off.
        self.fast_grants: FastGrants | None = FastGrants(server, self.issuer, runner)

    # -- authorization (OIDC Core 3.1.2) --

    async def verify_client(self, params: Mapping[str, str]) -> Client:
        """Find the client and check its redirect_uri; no redirect before this."""
        client_id = params.get("client_id")
        if not client_id:
            raise errors.UnverifiedClient("The request has no client_id.")
        client = await self._clients.get(client_id)
        if client is None:
            raise errors.UnverifiedClient("The client is not registered here.")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise errors.UnverifiedClient("The request has no redirect_uri.")
        if not client_rules.registered_redirect_uri(client, redirect_uri):
            raise errors.UnverifiedClient(
                "The redirect_uri is not registered for this client."
            )
        return client

    async def authorization_request(
        self, params: Mapping[str, str]
    ) -> AuthorizationRequest:
        """Validate an authorization request (OIDC Core 3.1.2.1, RFC 7636)."""
        client = await self.verify_client(params)
        redirect_uri = params["redirect_uri"]
        placeholder = AuthorizationRequest(client, redirect_uri, params, Message())

        try:
            self._check_request(client, params)
            hinted_sub = self._hinted_subject(params)
            message = self._parse_with_idpyoidc(client, redirect_uri, params)
        except errors.OAuthError as error:
            raise AuthorizationError(placeholder, error) from None
        return AuthorizationRequest(client, redirect_uri, params, message, hinted_sub)

    def _check_request(self, client: Client, params: Mapping[str, str]) -> None:
        for rule in request_rules.RULES:
            rule(client, params)

    def _hinted_subject(self, params: Mapping[str, str]) -> str | None:
        hint = params.get("id_token_hint")
        if hint is None:
            return None
        return hinted_subject(hint, self.server.keyjar, self.issuer)

    def _parse_with_idpyoidc(
        self, client: Client, redirect_uri: str, params: Mapping[str, str]
    ) -> Message:
        endpoint = self.server.get_endpoint("authorization")
        requested = params.get("scope", "").split()
        # idpyoidc rejects offline_access unless prompt=consent; the scopes are
        # filtered against the client's registration below instead.
        given = dict(params)
        given["scope"] = " ".join(s for s in requested if s != "offline_access")

        with self._client_db(client, redirect_uri):
            try:
                parsed = endpoint.parse_request(given)
            except Exception as exc:  # noqa: BLE001 - idpyoidc raises on bad input
                logger.info("idpyoidc rejected an authorization request: %s", type(exc))
                raise errors.InvalidRequest("the request is malformed") from None
        _raise_if_error(parsed)

        allowed = [s for s in requested if s in client.scope]
        parsed["scope"] = list(dict.fromkeys(allowed))
        return parsed

    async def issue_code(
        self, request: AuthorizationRequest, login: Authentication
    ) -> str:
        """Create the grant and code; return the redirect to the client."""
        client = request.client
        endpoint = self.server.get_endpoint("authorization")
        manager = self.server.context.session_manager
        authn_event = create_authn_event(
            login.sub,
            authn_info=ACR_PASSWORD,
            authn_time=login.auth_time,
            # idpyoidc refuses userinfo once the login's valid_until passes;
            # tokens bound the session here, so let it outlive them all.
            valid_until=login.auth_time + self._longest_token_lifetime(),
        )
        if login.sid:
            authn_event[LOGIN_SESSION_FIELD] = login.sid
        issued_session = ""
        # Read back by AuthnClaimsIDToken (oidc/id_token.py) for the amr claim.
        authn_event["amr"] = list(login.amr)

        def call() -> dict[str, Any]:
            nonlocal issued_session
            with self._client_db(client, request.redirect_uri):
                session_id = manager.create_session(
                    authn_event=authn_event,
                    auth_req=request.message,
                    user_id=login.sub,
                    client_id=client.client_id,
                    token_usage_rules=self.server.context.authz.usage_rules(
                        client.client_id
                    ),
                )
                issued_session = session_id
                result: dict[str, Any] = endpoint.authz_part2(
                    request.message, session_id
                )
                return result

        result = await self._runner.run(login.sub, client.client_id, None, call)
        args = result.get("response_args")
        if not isinstance(args, Message) or "code" not in args:
            logger.error("idpyoidc issued no code: %s", _error_code(args))
            raise AuthorizationError(request, errors.ServerError("no code issued"))
        if not await self._record_grant(login, issued_session):
            raise AuthorizationError(
                request, errors.LoginRequired("the login session has ended")
            )

        security_event("code_issued", client_id=client.client_id, sub=login.sub)
        return self.redirect(request, {"code": args["code"]})

    async def _record_grant(self, login: Authentication, session_id: str) -> bool:
        """List the new grant under the login session, for logout to revoke.

        Returns False, with the grant revoked, when the login ended while the
        grant was issued (logout, the sessions page, a disabled user).
        """
        if self._login_sessions is None or not login.sid:
            return True
        manager = self.server.context.session_manager
        _, client_id, grant_id = manager.decrypt_session_id(session_id)
        grant = SessionGrant(client_id, grant_id)
        if await self._login_sessions.add(login.sub, login.sid, grant):
            return True
        await self._login_sessions.revoke_all(login.sub, login.sid)
        logger.info(
            "grant revoked, login ended while it was issued: sub=%s client_id=%s",
            login.sub,
            client_id,
        )
        return False

    async def reject(
        self, params: Mapping[str, str], error: errors.OAuthError
    ) -> AuthorizationError:
        """Build the error redirect, once the client and redirect_uri check out."""
        client = await self.verify_client(params)
        request = AuthorizationRequest(
            client, params["redirect_uri"], params, Message()
        )
        return AuthorizationError(request, error)

    def redirect(self, request: AuthorizationRequest, values: dict[str, str]) -> str:
        """Build the redirect to the client, with state and iss (RFC 9207)."""
        response = dict(values)
        if request.state is not None:
            response["state"] = request.state
        response["iss"] = self.issuer
        return _add_query(request.redirect_uri, response)

    def error_redirect(self, failure: AuthorizationError) -> str:
        """Build the redirect for an error response (RFC 6749 4.1.2.1)."""
        return self.redirect(failure.request, failure.error.to_dict())

    def _longest_token_lifetime(self) -> int:
        return max(
            self.settings.access_token_lifetime,
            self.settings.refresh_token_lifetime,
            self.settings.id_token_lifetime,
        )

    # -- token endpoint (RFC 6749 3.2, 4.1.3, 6) --

    async def token(
        self, form: Mapping[str, str], authorization: str | None
    ) -> dict[str, Any]:
        """Process a token request; raise an OAuthError on failure."""
        prefetched = await self._prefetch_grant(form, authorization)
        if prefetched is not None:
            client = prefetched.client
        else:
            client = await self.authenticate_client(form, authorization)

        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.InvalidRequest("grant_type is missing")
        if grant_type == "client_credentials":
            return await self.tokens.client_credentials(client, form)
        if grant_type not in ("authorization_code", "refresh_token"):
            raise errors.UnsupportedGrantType(
                f"grant_type {grant_type!r} is not supported"
            )
        if grant_type not in client.grant_types:
            raise errors.UnauthorizedClient(f"the client may not use {grant_type}")
        if grant_type == "authorization_code":
            body = await self._code_grant(client, form, prefetched)
        else:
            body = await self._refresh_grant(client, form, prefetched)
        return await self.tokens.finish(client, body)

    async def _prefetch_grant(
        self, form: Mapping[str, str], authorization: str | None
    ) -> Prefetched | None:
        """Authenticate the client and read the grant in one round trip, if possible.

        Only for requests the grant-document path serves, from clients that
        authenticate with a secret or not at all. None means "authenticate
        the usual way". Client authentication still decides first, so its
        errors come first.
        """
        grant_type = form.get("grant_type")
        if self.fast_grants is None or grant_type not in PRESENTED_PARAMETER:
            return None
        parameter, handler_key = PRESENTED_PARAMETER[grant_type]
        presented = form.get(parameter)
        covered = covers_code(form) if parameter == "code" else covers_refresh(form)
        if not presented or not covered:
            return None
        credentials = client_rules.read_credentials(form, authorization)
        if credentials.assertion is not None:
            return None
        found = self._resolve_session(presented, handler_key)
        if found is None or found.client_id != credentials.client_id:
            return None

        stored, (record,) = await self._runner.store.fetch_grant_with(
            found.uid,
            found.client_id,
            found.grant_id,
            [store_keys.client(found.client_id)],
        )
        registered = None if record is None else client_rules.parsed_client(record)
        client = client_rules.authenticate(registered, credentials)
        return Prefetched(client, found, stored)

    async def authenticate_client(
        self, form: Mapping[str, str], authorization: str | None
    ) -> Client:
        """Authenticate the client of a back-channel request (RFC 6749 2.3.1)."""
        credentials = client_rules.read_credentials(form, authorization)
        client = await self._clients.get(credentials.client_id)
        if credentials.assertion is not None:
            return await self._assertions.verify(client, credentials.assertion)
        return client_rules.authenticate(client, credentials)

    # -- revocation (RFC 7009) and introspection (RFC 7662) --

    async def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        """Revoke a token of the authenticated client; unknown tokens are ignored."""
        client = await self.authenticate_client(form, authorization)
        token = form.get("token")
        if not token:
            raise errors.InvalidRequest("token is missing")
        await self.tokens.revoke(client, token, form.get("token_type_hint"))

    async def introspect(
        self, form: Mapping[str, str], authorization: str | None
    ) -> dict[str, Any]:
        """Describe a token to the client it was issued to (RFC 7662 2.2)."""
        client = await self.authenticate_client(form, authorization)
        if client.is_public:
            # RFC 7662 2.1 requires authorization of the caller, and a bare
            # client_id proves nothing.
            raise errors.InvalidClient("public clients may not use introspection")
        token = form.get("token")
        if not token:
            raise errors.InvalidRequest("token is missing")
        return await self.tokens.introspect(client, token, form.get("token_type_hint"))

    async def _code_grant(
        self,
        client: Client,
        form: Mapping[str, str],
        prefetched: Prefetched | None = None,
    ) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise errors.InvalidRequest("code is missing")
        if not form.get("redirect_uri"):
            raise errors.InvalidRequest("redirect_uri is missing")
        verifier = form.get("code_verifier")
        if verifier is not None and not CODE_VERIFIER.fullmatch(verifier):
            raise errors.InvalidGrant("code_verifier is malformed")

        found = (
            prefetched.path
            if prefetched is not None
            else self._resolve_session(code, "authorization_code")
        )
        if found is None or found.client_id != client.client_id:
            raise errors.InvalidGrant("the code is invalid or expired")
        if self.fast_grants is not None and covers_code(form):
            stored = prefetched.grant if prefetched is not None else None
            body = await self.fast_grants.redeem(client, form, found, stored)
            if body is not None:
                security_event(
                    "code_redeemed", client_id=client.client_id, sub=found.uid
                )
                return body
        uid, grant_id = found.uid, found.grant_id
        replayed = False

        def call() -> Any:
            nonlocal replayed
            grant = self.server.context.session_manager.db.get(
                f"{uid};;{client.client_id};;{grant_id}"
            )
            if grant is None:
                # Revoked grants are deleted from Redis, and idpyoidc raises
                # instead of returning an error when the grant node is missing.
                return {"error": "invalid_grant"}
            if verifier is not None:
                # RFC 9700 4.8.2: a verifier for a request without a challenge
                # is a downgrade attempt.
                if "code_challenge" not in grant.authorization_request:
                    return {"error": "invalid_grant"}
            issued = grant.get_token(code)
            if issued is not None and issued.used:
                # RFC 6749 4.1.2: a replayed code revokes what it produced,
                # including tokens refreshed since, because one grant contains one code.
                replayed = True
                grant.revoke()
                return {"error": "invalid_grant"}
            return self._run_token_endpoint(client, form)

        claims = await self._prefetch_claims(uid)
        result = await self._runner.run(
            uid, client.client_id, grant_id, call, claims, presented=code
        )
        if replayed:
            security_event("code_reuse", client_id=client.client_id, sub=uid)
        response = self._token_response(result, "authorization_code")
        security_event("code_redeemed", client_id=client.client_id, sub=uid)
        return response

    async def _refresh_grant(
        self,
        client: Client,
        form: Mapping[str, str],
        prefetched: Prefetched | None = None,
    ) -> dict[str, Any]:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise errors.InvalidRequest("refresh_token is missing")
        found = (
            prefetched.path
            if prefetched is not None
            else self._resolve_session(refresh_token, "refresh_token")
        )
        if found is None or found.client_id != client.client_id:
            raise errors.InvalidGrant("the refresh token is invalid or expired")
        if self.fast_grants is not None and covers_refresh(form):
            stored = prefetched.grant if prefetched is not None else None
            body = await self.fast_grants.refresh(client, form, found, stored)
            if body is not None:
                security_event(
                    "token_refreshed", client_id=client.client_id, sub=found.uid
                )
                return body
        uid, grant_id = found.uid, found.grant_id
        grant_name = f"{uid};;{client.client_id};;{grant_id}"
        reused = False

        def call() -> Any:
            nonlocal reused
            grant = self.server.context.session_manager.db.get(grant_name)
            if grant is None:
                return {"error": "invalid_grant"}
            token = grant.get_token(refresh_token)
            if token is None or not token.is_active():
                # A refresh token we issued but no longer hold as active was
                # rotated out: someone replays it (RFC 9700 4.14.2).
                reused = True
                grant.revoke()
                return {"error": "invalid_grant"}
            requested = set(form.get("scope", "").split())
            if not requested <= set(grant.find_scope(token.based_on)):
                # RFC 6749 6 calls a scope beyond the grant invalid_scope, but
                # idpyoidc returns invalid_request.
                return {"error": "invalid_scope"}
            result = self._run_token_endpoint(client, form)
            if _error_code(result) is None:
                _revoke_older_access_tokens(grant, result)
            return result

        claims = await self._prefetch_claims(uid)
        result = await self._runner.run(
            uid, client.client_id, grant_id, call, claims, presented=refresh_token
        )
        if reused:
            security_event("refresh_token_reuse", client_id=client.client_id, sub=uid)
        response = self._token_response(result, "refresh_token")
        security_event("token_refreshed", client_id=client.client_id, sub=uid)
        return response

    def _run_token_endpoint(self, client: Client, form: Mapping[str, str]) -> Any:
        endpoint = self.server.get_endpoint("token")
        request = {k: v for k, v in form.items() if k != "client_secret"}
        request["client_id"] = client.client_id
        with self._client_db(client, form.get("redirect_uri")):
            marker = authenticated_client.set(client.client_id)
            try:
                parsed = endpoint.parse_request(request, http_info={"headers": {}})
                if _error_code(parsed):
                    return parsed
                return endpoint.process_request(parsed)
            finally:
                authenticated_client.reset(marker)

    def _token_response(self, result: Any, grant_type: str) -> dict[str, Any]:
        code = _error_code(result)
        if code is not None:
            raise _token_error(code, grant_type)
        args = result["response_args"]
        body: dict[str, Any] = (
            args.to_dict() if isinstance(args, Message) else dict(args)
        )
        body["token_type"] = "Bearer"  # noqa: S105
        if isinstance(body.get("scope"), list):
            # RFC 6749 5.1: scope is a space-delimited string.
            body["scope"] = " ".join(body["scope"])
        return body

    # -- userinfo (OIDC Core 5.3) --

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """Return the claims an access token releases; raise InvalidToken."""
        expanded = await self.tokens.expand(access_token)
        if expanded is None:
            raise errors.InvalidToken("the access token is invalid or expired")
        access_token = expanded
        path = self._resolve(access_token, "access_token")
        if path is None:
            raise errors.InvalidToken("the access token is invalid or expired")
        uid, client_id, grant_id = path

        # One round trip for the grant, the client record (it must still be
        # registered) and the cached claims.
        stored, (client, cached) = await self._runner.store.fetch_grant_with(
            uid,
            client_id,
            grant_id,
            [store_keys.client(client_id), store_keys.claims(uid)],
        )
        claims = await self._claims.get_read(uid, cached)
        token = None
        if client is not None and claims is not None and stored.data is not None:
            token = userinfo_rules.find_access_token(
                stored.data, access_token, int(time.time())
            )
        if token is None or claims is None:
            raise errors.InvalidToken("the access token is invalid or expired")
        return userinfo_rules.released_claims(claims, token["scope"], token["sub"])

    # -- metadata --

    def provider_info(self) -> dict[str, Any]:
        """Return the discovery document (OIDC Discovery 3), listing only what works."""
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorization",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "revocation_endpoint": f"{base}/revoke",
            "introspection_endpoint": f"{base}/introspect",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            # Public clients may revoke their tokens with client_id alone
            # (RFC 7009 5), so none is listed here but not for introspection.
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
            "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": CLAIMS_SUPPORTED,
            "acr_values_supported": [ACR_PASSWORD],
            "claim_types_supported": ["normal"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "authorization_response_iss_parameter_supported": True,
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "end_session_endpoint": f"{base}/logout",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        """Return the public keys: next, current and retired signing keys.

        The export is kept until the keyring follower installs a new key
        issuer (oidc/keyring.py replaces the object, never edits it), because
        serialising the keys took a tenth of the CPU of a JWKS request.
        """
        try:
            published = self.server.keyjar[self.issuer]
        except IssuerNotFound:
            published = None  # no keys installed yet: export what there is
        if published is None or self._jwks is None or self._jwks[0] is not published:
            keys: dict[str, Any] = self.server.keyjar.export_jwks(
                private=False, issuer_id=self.issuer
            )
            self._jwks = (published, keys)
        return self._jwks[1]

    # -- helpers --

    def _resolve(self, token: str, handler_key: str) -> tuple[str, str, str] | None:
        """Find (uid, client_id, grant_id) from a token without touching storage."""
        found = self._resolve_session(token, handler_key)
        if found is None:
            return None
        return found.uid, found.client_id, found.grant_id

    def _resolve_session(self, token: str, handler_key: str) -> GrantPath | None:
        """Find the session id and grant path in a token, or None if it is not ours."""
        handler = self.server.context.session_manager.token_handler.handler
        try:
            if handler_key == "access_token":
                sid = self._access_token_sid(token)
            else:
                sid = handler[handler_key].info(token)["sid"]
            return None if sid is None else self._grant_path(sid)
        except Exception:  # noqa: BLE001 - any failure means "not our token"
            return None

    def _access_token_sid(self, token: str) -> str | None:
        """Verify a JWT access token like idpyoidc's JWTToken.info; return its sid."""
        try:
            claims = self._access_verifier.payload(token)
        except CannotVerify:
            handler = self.server.context.session_manager.token_handler.handler
            sid: str = handler["access_token"].info(token)["sid"]
            return sid
        if claims is None or claims.get("iss") != self.issuer:
            return None
        token_class = claims.get("ttype") or claims.get("token_class")
        expiry = claims.get("exp")
        if token_class != "access_token" or not isinstance(expiry, int):  # noqa: S105
            return None
        if 0 <= expiry < int(time.time()):
            return None
        session_id = claims.get("sid")
        return session_id if isinstance(session_id, str) else None

    def _decrypt_grant_path(self, sid: str) -> GrantPath:
        manager = self.server.context.session_manager
        session_id = manager._compatible_sid(sid)
        uid, client_id, grant_id = manager.decrypt_session_id(session_id)
        return GrantPath(session_id, uid, client_id, grant_id)

    async def _prefetch_claims(self, uid: str) -> dict[str, dict[str, Any]]:
        claims = await self._claims.get(uid)
        return {uid: claims} if claims is not None else {}

    @contextlib.contextmanager
    def _client_db(
        self, client: Client, redirect_uri: str | None = None
    ) -> Iterator[None]:
        context = self.server.context
        original = context.cdb
        context.cdb = {client.client_id: client_rules.cdb_entry(client, redirect_uri)}
        try:
            yield
        finally:
            context.cdb = original


def _revoke_older_access_tokens(grant: Any, result: Any) -> None:
    """Keep only the access token a refresh just issued.

    Earlier access tokens of the grant are revoked, so the grant does not grow
    with every refresh and a refreshed client has one live access token.
    """
    issued = result["response_args"].get("access_token")
    for token in grant.issued_token:
        if token.token_class == "access_token" and token.value != issued:  # noqa: S105
            token.revoke()


def _error_code(result: Any) -> str | None:
    if isinstance(result, (Message, dict)) and "error" in result:
        return str(result["error"])
    return None


def _raise_if_error(result: Any) -> None:
    code = _error_code(result)
    if code is None:
        return
    # idpyoidc's descriptions can carry Python exception text; send our own.
    description = f"the request was rejected ({code})"
    cls = {
        "invalid_scope": errors.InvalidScope,
        "unsupported_response_type": errors.UnsupportedResponseType,
        "unauthorized_client": errors.UnauthorizedClient,
        "access_denied": errors.AccessDenied,
    }.get(code, errors.InvalidRequest)
    raise cls(description)


def _token_error(code: str, grant_type: str) -> errors.OAuthError:
    # idpyoidc returns "invalid_request" for spent or revoked codes and refresh
    # tokens; RFC 6749 5.2 calls those invalid_grant.
    if code in ("invalid_grant", "invalid_request", "invalid_token"):
        return errors.InvalidGrant(f"the {grant_type.replace('_', ' ')} is invalid")
    if code == "invalid_scope":
        return errors.InvalidScope("the requested scope exceeds the grant")
    if code == "unauthorized_client":
        return errors.UnauthorizedClient("the client may not use this grant")
    return errors.InvalidGrant(f"the {grant_type.replace('_', ' ')} is invalid")


def _add_query(uri: str, values: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = urlencode(values)
    if parts.query:
        query = parts.query + "&" + query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


__all__ = [
    "Authentication",
    "AuthorizationError",
    "AuthorizationRequest",
    "Provider",
    "User",
]
