"""ID token claims that idpyoidc 5.0 gets wrong or leaves out.

- `sid` is the browser's login session id, the value logout tokens carry
  (Back-Channel Logout 1.0 section 2.1); idpyoidc puts its own encrypted
  grant path there. The id travels in the grant's authentication event.
- `auth_time` only when the request had max_age or the client registered
  require_auth_time (OIDC Core 2, 3.1.2.1); idpyoidc always copies it.
- `amr` from the login, which idpyoidc does not add.
- `at_hash` of the access token issued with it (OIDC Core 3.3.2.11), which
  idpyoidc's token endpoint leaves out; not for clients that receive opaque
  access tokens.
"""

from __future__ import annotations

from typing import Any

from cryptojwt.jws.utils import left_hash
from idpyoidc.server.session.grant import Grant
from idpyoidc.server.session.token import SessionToken
from idpyoidc.server.token.id_token import IDToken

from .state import DIGEST_PREFIX

# The authentication event field that stores the login session id.
LOGIN_SESSION_FIELD = "porchlight_sid"


class PorchlightIDToken(IDToken):  # type: ignore[misc]
    """idpyoidc's IDToken with sid, auth_time and amr set as described above."""

    def payload(self, session_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        claims: dict[str, Any] = super().payload(session_id, *args, **kwargs)
        context = self.upstream_get("context")
        info = context.session_manager.get_session_info(session_id, grant=True)
        grant = info["grant"]
        event = grant.authentication_event or {}

        claims.pop("sid", None)
        login_session = event.get(LOGIN_SESSION_FIELD)
        if login_session:
            claims["sid"] = login_session

        client = context.cdb.get(info["client_id"], {})
        request = grant.authorization_request or {}
        if "max_age" not in request and not client.get("require_auth_time"):
            claims.pop("auth_time", None)

        amr = event.get("amr")
        if amr:
            claims["amr"] = list(amr)

        access_token = _new_access_token(grant)
        # An at_hash over the JWT would not match an opaque token, which the
        # client receives in its place later.
        if access_token is not None and client.get("access_token_format") != "opaque":
            claims["at_hash"] = at_hash(access_token.value, kwargs.get("alg", "RS256"))
        return claims


def at_hash(access_token: str, alg: str) -> str:
    """Return the at_hash of an access token for an ID token signed with alg."""
    value: str = left_hash(access_token.encode(), f"HS{alg[-3:]}")
    return value


def _new_access_token(grant: Grant) -> SessionToken | None:
    """Return the access token minted in this request, if any.

    Tokens loaded from Redis carry digests as values. Only a token minted in
    the running request carries its value.
    """
    for token in reversed(grant.issued_token):
        if token.token_class == "access_token" and not str(token.value).startswith(  # noqa: S105
            DIGEST_PREFIX
        ):
            return token
    return None
