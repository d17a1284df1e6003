"""The ID token's authentication claims: auth_time, acr and amr (OIDC Core 2)."""

from __future__ import annotations

from typing import Any

from idpyoidc.server.token.id_token import IDToken


class AuthnClaimsIDToken(IDToken):  # type: ignore[misc]
    """idpyoidc's ID token with auth_time sent only when due, and amr added.

    idpyoidc 5.0 copies auth_time from the login into every ID token and has
    no amr. OIDC Core 2 and 3.1.2.1 ask for auth_time when the request had
    max_age or the client registered require_auth_time.
    """

    def payload(self, session_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        claims: dict[str, Any] = super().payload(session_id, *args, **kwargs)
        context = self.upstream_get("context")
        info = context.session_manager.get_session_info(session_id, grant=True)
        grant = info["grant"]
        client = context.cdb.get(info["client_id"], {})

        request = grant.authorization_request or {}
        if "max_age" not in request and not client.get("require_auth_time"):
            claims.pop("auth_time", None)
        amr = (grant.authentication_event or {}).get("amr")
        if amr:
            claims["amr"] = list(amr)
        return claims
