"""CORS for the endpoints browser-based clients call (Fetch standard, CORS protocol).

Only the origins of registered redirect URIs are allowed, read from a Redis
set that ClientStore keeps up to date, so every worker agrees at once. Pages
for people (authorization, login) never carry CORS headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..store.clients import ClientStore
from .keys import REDIS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths a single-page app may call from its own origin.
CORS_PATHS = frozenset(
    {"/.well-known/openid-configuration", "/jwks", "/token", "/userinfo", "/revoke"}
)
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Respond to preflights and add Access-Control-Allow-Origin for allowed ones."""
    if request.path not in CORS_PATHS:
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = origin is not None and await ClientStore(
        request.app[REDIS]
    ).is_cors_origin(origin)

    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
        if allowed:
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _add_headers(exc, origin if allowed else None)
            raise
    _add_headers(response, origin if allowed else None)
    return response


def _add_headers(response: web.StreamResponse, origin: str | None) -> None:
    # Caches must key on Origin, because the headers depend on it even when
    # the origin is rejected.
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
