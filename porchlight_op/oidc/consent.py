"""When an authorization request needs the user's consent (OIDC Core 3.1.2.4).

A user is asked once per client for each scope; the answer is kept and the
page appears again only for scopes not granted yet, or when the client sends
prompt=consent. First-party clients skip the page, except for offline_access:
a refresh token that outlives the login always needs the user's explicit
consent once (OIDC Core 11).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..models import Client

# Scopes a first-party client still needs explicit consent for.
ALWAYS_CONSENTED = frozenset({"offline_access"})


def needs_consent(
    client: Client,
    requested: Sequence[str],
    granted: Collection[str],
    prompt: Collection[str],
) -> bool:
    """Tell whether to show the consent page for these requested scopes."""
    if "consent" in prompt:
        return True
    missing = {scope for scope in requested if scope not in granted}
    if client.first_party:
        missing &= ALWAYS_CONSENTED
    return bool(missing)
