"""ID tokens whose `sid` claim is the browser login session id.

idpyoidc 5.0 puts its own encrypted grant path in `sid`. Back-Channel Logout
1.0 section 2.1 wants the OP session there, the same value that logout tokens
carry, so the login session id travels in the grant's authentication event.
"""

from __future__ import annotations

from typing import Any

from idpyoidc.server.token.id_token import IDToken

# The authentication event field that stores the login session id.
LOGIN_SESSION_FIELD = "porchlight_sid"


class SessionIDToken(IDToken):  # type: ignore[misc]
    """idpyoidc's IDToken with `sid` replaced by the login session id, or left out."""

    def payload(self, session_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        claims: dict[str, Any] = super().payload(session_id, *args, **kwargs)
        claims.pop("sid", None)
        manager = self.upstream_get("context").session_manager
        grant = manager.get_session_info(session_id, grant=True)["grant"]
        event = grant.authentication_event
        login_session = event.get(LOGIN_SESSION_FIELD) if event else None
        if login_session:
            claims["sid"] = login_session
        return claims
