"""The client authentication method idpyoidc runs at the token endpoint.

Porchlight authenticates the client itself (`porchlight_op.oidc.clients`) and
records the result in a context variable; this method only reports it, so
idpyoidc never compares secrets itself.
"""

from __future__ import annotations

from typing import Any

from idpyoidc.server.client_authn import ClientAuthnMethod
from idpyoidc.server.exception import ClientAuthenticationError

from .context import authenticated_client


class PreverifiedClient(ClientAuthnMethod):  # type: ignore[misc]
    """Report the client that porchlight authenticated for this request."""

    tag = "porchlight"

    def is_usable(self, request: Any = None, authorization_token: Any = None) -> bool:
        return True

    def _verify(self, request: Any = None, **kwargs: Any) -> dict[str, str]:
        client_id = authenticated_client.get()
        if client_id is None:
            raise ClientAuthenticationError("client not authenticated")
        return {"client_id": client_id}
