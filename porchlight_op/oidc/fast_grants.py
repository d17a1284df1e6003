"""Code redemption and refresh on the stored grant document, without idpyoidc.

idpyoidc's token endpoint loads the user's whole session branch as objects,
mints through several layers and is followed by a dump and a diff. For the
requests that an RP normally sends, the same checks and the same changes are
applied here to the grant's JSON document: one read, one compare-and-set
script. A request this module does not cover returns None, and the caller
runs idpyoidc instead. The rule for that is in `covers_code`,
`covers_refresh` and `grant_documents.is_plain`: extra request parameters,
grants that release claims in tokens or carry extras, and PKCE methods
other than S256 go to idpyoidc.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptojwt.utils import b64e
from idpyoidc.server import Server

from .. import errors
from ..log import OIDC, security_event
from ..models import Client
from ..store.sessions import StoredNode
from . import grant_documents as documents
from .minting import TokenMinter, authorization_request, is_known_shape
from .state import MAX_ATTEMPTS, StateRunner, token_digest

logger = logging.getLogger(OIDC)

CLIENT_AUTH_PARAMS = frozenset(
    {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
)
CODE_PARAMS = CLIENT_AUTH_PARAMS | {
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
}
REFRESH_PARAMS = CLIENT_AUTH_PARAMS | {"grant_type", "refresh_token", "scope"}

Body = dict[str, Any]


@dataclass(frozen=True)
class GrantPath:
    """The grant a code or token refers to: idpyoidc's session id and its parts."""

    session_id: str
    uid: str
    client_id: str
    grant_id: str


def covers_code(form: Mapping[str, str]) -> bool:
    """Tell whether a code redemption uses only parameters handled here."""
    return set(form) <= CODE_PARAMS


def covers_refresh(form: Mapping[str, str]) -> bool:
    """Tell whether a refresh request uses only parameters handled here."""
    if not set(form) <= REFRESH_PARAMS:
        return False
    return "scope" not in form or bool(form["scope"].split())


class _Fallback(Exception):
    """Raised when a grant needs idpyoidc, before anything is written."""


class FastGrants:
    """Runs the authorization_code and refresh_token grants on grant documents."""

    def __init__(self, server: Server, issuer: str, runner: StateRunner) -> None:
        self._minter = TokenMinter(server, issuer)
        # The store is taken from the runner on each use, so both paths always
        # write through the same one.
        self._runner = runner

    async def redeem(
        self,
        client: Client,
        form: Mapping[str, str],
        path: GrantPath,
        stored: StoredNode | None = None,
    ) -> Body | None:
        """Exchange a code for tokens (RFC 6749 4.1.3), or return None for idpyoidc.

        `stored` is the grant if the caller read it already.
        """
        return await self._run(
            path, stored, lambda read: self._redeem(client, form, path, read)
        )

    async def refresh(
        self,
        client: Client,
        form: Mapping[str, str],
        path: GrantPath,
        stored: StoredNode | None = None,
    ) -> Body | None:
        """Refresh with rotation and reuse detection (RFC 6749 6, RFC 9700 4.14.2)."""
        return await self._run(
            path, stored, lambda read: self._refresh(client, form, path, read)
        )

    async def _run(
        self,
        path: GrantPath,
        stored: StoredNode | None,
        step: Callable[[StoredNode], Awaitable[Body | None]],
    ) -> Body | None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if stored is None:
                stored = await self._runner.store.fetch_grant(
                    path.uid, path.client_id, path.grant_id
                )
            try:
                body = await step(stored)
            except _Fallback:
                return None
            if body is not None:
                return body
            stored = None
            logger.info(
                "grant changed concurrently, retrying (attempt %d, grant %s)",
                attempt,
                path.grant_id,
            )
        raise errors.StorageUnavailable(
            "grant update failed: the grant changed during every attempt"
        )

    # -- authorization_code --

    async def _redeem(
        self,
        client: Client,
        form: Mapping[str, str],
        path: GrantPath,
        stored: StoredNode,
    ) -> Body | None:
        now = int(time.time())
        document = _plain_document(stored)
        if document is None:
            raise _invalid_code()
        request = authorization_request(document)
        verifier = form.get("code_verifier")
        if verifier is not None and "code_challenge" not in request:
            # RFC 9700 4.8.2: a verifier without a challenge is a downgrade.
            raise _invalid_code()

        found = documents.find(document, token_digest(form["code"]))
        if found is None or found[1].get("token_class") != "authorization_code":
            raise _invalid_code()
        code = found[1]
        if code.get("used"):
            # RFC 6749 4.1.2: a replayed code revokes what it produced, and
            # since one grant contains one code, that is the whole grant.
            if not await self._delete(path, stored):
                return None
            security_event("code_reuse", client_id=client.client_id, sub=path.uid)
            raise _invalid_code()
        if not documents.is_active(code, now) or not documents.is_active(document, now):
            raise _invalid_code()
        _check_pkce(request, verifier)
        if (
            "redirect_uri" in request
            and form["redirect_uri"] != request["redirect_uri"]
        ):
            raise _invalid_code()

        uses = code.get("used", 0)
        body = self._mint_for_code(client, document, code, path, now)
        # idpyoidc's counting: each mint adds one use and the helper takes
        # back all but the last; register_usage adds one more.
        code["used"] = uses + 2
        if not await self._write(path, stored, document, now):
            return None
        return body

    def _mint_for_code(
        self,
        client: Client,
        document: documents.Document,
        code: documents.Token,
        path: GrantPath,
        now: int,
    ) -> Body:
        """Mint what idpyoidc's AccessTokenHelper.process_request mints."""
        mints = code.setdefault("usage_rules", {}).setdefault("supports_minting", [])
        # idpyoidc adds refresh_token when the client may use that grant, which
        # every client in cdb (oidc/clients.py) may.
        if "refresh_token" not in mints:
            mints.append("refresh_token")
        if "access_token" not in mints:
            raise _Fallback
        scope = list(code.get("scope") or []) or documents.find_scope(
            document, code.get("based_on")
        )
        grant_scope = list(document.get("scope") or [])

        access, _ = self._add_access_token(document, code, path, scope, now)
        body: Body = {"token_type": "Bearer", "scope": " ".join(grant_scope)}
        body.update(access)
        if "offline_access" in grant_scope and "refresh_token" in mints:
            rules = documents.copy_rules(_grant_rules(document, "refresh_token"))
            body["refresh_token"] = self._add_refresh_token(
                document, code, path, scope, rules, now
            )
        if "openid" in _scope_list(authorization_request(document).get("scope")) and (
            "id_token" in mints
        ):
            body["id_token"] = self._add_id_token(
                document, client, scope, access["access_token"], now
            )
        return body

    # -- refresh_token --

    async def _refresh(
        self,
        client: Client,
        form: Mapping[str, str],
        path: GrantPath,
        stored: StoredNode,
    ) -> Body | None:
        now = int(time.time())
        document = _plain_document(stored)
        if document is None:
            raise _invalid_refresh_token()

        found = documents.find(document, token_digest(form["refresh_token"]))
        if found is None or not documents.is_active(found[1], now):
            # A refresh token we issued but no longer hold as active was
            # rotated out: someone replays it (RFC 9700 4.14.2).
            if not await self._delete(path, stored):
                return None
            security_event(
                "refresh_token_reuse", client_id=client.client_id, sub=path.uid
            )
            raise _invalid_refresh_token()
        token = found[1]
        if token.get("token_class") != "refresh_token" or not documents.is_active(
            document, now
        ):
            raise _invalid_refresh_token()

        allowed = documents.find_scope(document, token.get("based_on"))
        scope = allowed
        if "scope" in form:
            scope = list(dict.fromkeys(form["scope"].split()))
            if not set(scope) <= set(allowed):
                raise errors.InvalidScope("the requested scope exceeds the grant")

        body = self._mint_for_refresh(client, document, token, path, scope, now)
        if not await self._write(path, stored, document, now):
            return None
        return body

    def _mint_for_refresh(
        self,
        client: Client,
        document: documents.Document,
        token: documents.Token,
        path: GrantPath,
        scope: list[str],
        now: int,
    ) -> Body:
        """Mint what idpyoidc's RefreshTokenHelper.process_request mints."""
        mints = (token.get("usage_rules") or {}).get("supports_minting") or []
        if "access_token" not in mints:
            raise _Fallback
        access, access_digest = self._add_access_token(
            document, token, path, scope, now
        )
        body: Body = {"token_type": "Bearer", "scope": " ".join(scope)}
        body.update(access)
        if "refresh_token" in mints and "offline_access" in scope:
            rules = documents.copy_rules(token.get("usage_rules") or {})
            body["refresh_token"] = self._add_refresh_token(
                document, token, path, scope, rules, now
            )
        if "id_token" in mints and "openid" in scope:
            body["id_token"] = self._add_id_token(
                document, client, scope, access["access_token"], now
            )
            token["used"] = token.get("used", 0) + 1
        token["used"] = token.get("used", 0) + 1
        # Rotation: the presented token is spent (revoke_refresh_on_issue),
        # and the grant keeps only the access token issued now.
        token["revoked"] = True
        documents.revoke_access_tokens(document, access_digest)
        return body

    # -- minting into the document --

    def _add_access_token(
        self,
        document: documents.Document,
        parent: documents.Token,
        path: GrantPath,
        scope: list[str],
        now: int,
    ) -> tuple[Body, str]:
        """Mint an access token into the grant and return its fields and digest."""
        lifetime = documents.lifetime(document, "access_token")
        value = self._minter.access_token(
            document, path.session_id, scope, lifetime, now
        )
        digest = token_digest(value)
        entry = documents.new_token(
            "access_token",
            digest,
            parent["value"],
            scope,
            documents.copy_rules(_grant_rules(document, "access_token")),
            lifetime,
            now,
        )
        documents.add(document, "access_token", entry)
        parent["used"] = parent.get("used", 0) + 1
        answer: Body = {"access_token": value}
        if lifetime:
            answer["expires_in"] = lifetime
        return answer, digest

    def _add_refresh_token(
        self,
        document: documents.Document,
        parent: documents.Token,
        path: GrantPath,
        scope: list[str],
        rules: dict[str, Any],
        now: int,
    ) -> str:
        value = self._minter.refresh_token(path.session_id)
        entry = documents.new_token(
            "refresh_token",
            token_digest(value),
            parent["value"],
            scope,
            rules,
            documents.lifetime(document, "refresh_token"),
            now,
        )
        documents.add(document, "refresh_token", entry)
        parent["used"] = parent.get("used", 0) + 1
        return value

    def _add_id_token(
        self,
        document: documents.Document,
        client: Client,
        scope: list[str],
        access_token: str,
        now: int,
    ) -> str:
        value = self._minter.id_token(document, client, scope, access_token, now)
        # idpyoidc appends the ID token to the grant, and pruning drops it
        # before the write; only the grant's mint count remains.
        document["used"] = document.get("used", 0) + 1
        return value

    # -- writing --

    async def _write(
        self,
        path: GrantPath,
        stored: StoredNode,
        document: documents.Document,
        now: int,
    ) -> bool:
        documents.prune(document, now)
        ttl = documents.ttl(document, now)
        data = documents.dump(document) if ttl else None
        return await self._runner.store.commit_grant(
            path.uid, path.client_id, path.grant_id, stored.version, data, ttl
        )

    async def _delete(self, path: GrantPath, stored: StoredNode) -> bool:
        return await self._runner.store.commit_grant(
            path.uid, path.client_id, path.grant_id, stored.version, None, 0
        )


def _invalid_code() -> errors.InvalidGrant:
    # Built only when raised, because most requests succeed.
    return errors.InvalidGrant("the code is invalid or expired")


def _invalid_refresh_token() -> errors.InvalidGrant:
    return errors.InvalidGrant("the refresh token is invalid or expired")


def _plain_document(stored: StoredNode) -> documents.Document | None:
    """Parse the stored grant; None when absent, _Fallback when not plain."""
    if stored.data is None:
        return None
    document = documents.load(stored.data)
    if not documents.is_plain(document) or not is_known_shape(document):
        raise _Fallback
    return document


def _grant_rules(document: documents.Document, token_class: str) -> dict[str, Any]:
    rules: dict[str, Any] = (document.get("usage_rules") or {}).get(token_class) or {}
    return rules


def _scope_list(scope: Any) -> list[str]:
    if isinstance(scope, str):
        return scope.split()
    return [str(item) for item in scope or ()]


def _check_pkce(request: Mapping[str, Any], verifier: str | None) -> None:
    """Verify the code_verifier against the request's S256 challenge (RFC 7636 4.6)."""
    challenge = request.get("code_challenge")
    if challenge is None:
        return
    if request.get("code_challenge_method") != "S256":
        raise _Fallback
    if verifier is None:
        raise errors.InvalidGrant("the code_verifier is missing")
    digest = b64e(hashlib.sha256(verifier.encode("ascii")).digest()).decode("ascii")
    if not hmac.compare_digest(digest, str(challenge)):
        raise errors.InvalidGrant("the code_verifier does not match")
