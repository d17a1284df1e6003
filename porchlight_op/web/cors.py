"""CORS for the endpoints browser-based clients call (Fetch standard, CORS protocol).

Only the origins of registered redirect URIs are allowed, read from a Redis
set that ClientStore keeps up to date, so every worker agrees at once. Pages
for people (authorization, login) never carry CORS headers.
"""

from __future__ import annotations

from aiohttp import web

from ..store.clients import ClientStore
from .keys import REDIS

# Paths a single-page app may call from its own origin.
CORS_PATHS = frozenset(
    {"/.well-known/openid-configuration", "/jwks", "/token", "/userinfo", "/revoke"}
)
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"


async def allowed_origin(request: web.Request, origin: str) -> str | None:
    """Return the Origin header value if that origin may read responses, else None."""
    if await ClientStore(request.app[REDIS]).is_cors_origin(origin):
        return origin
    return None


def preflight_response(origin: str | None) -> web.Response:
    """Build the 204 reply to a preflight, with allow headers for an allowed origin."""
    response = web.Response(status=204)
    if origin is not None:
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    add_headers(response, origin)
    return response


def add_headers(response: web.StreamResponse, origin: str | None) -> None:
    """Add Vary: Origin, and Access-Control-Allow-Origin for an allowed origin."""
    # Caches must key on Origin, because the headers depend on it even when
    # the origin is rejected.
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
