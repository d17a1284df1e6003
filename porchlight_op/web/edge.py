"""The one application middleware, in front of every request.

In a single coroutine frame it applies, outermost first, X-Forwarded-* from
trusted proxies, the request id, the security headers, CORS and error
rendering. Page requests then pass through
the page middlewares (the template context processors and aiohttp-session).
API requests skip those, because API handlers use neither templates nor the
browser session, so they get no session cookie either.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from aiohttp import web
from aiohttp.typedefs import Middleware

from . import cors
from .middlewares import (
    API_PREFIXES,
    SECURITY_HEADERS,
    Handler,
    error_response,
    start_request,
)
from .proxies import Network, forwarded_request, is_trusted


def edge_middleware(
    networks: Sequence[Network], page_middlewares: Sequence[Middleware]
) -> Middleware:
    """Build the middleware. The page_middlewares run, outermost first, on pages."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if networks and is_trusted(request.remote, networks):
            request = forwarded_request(request, networks)
        request_id = start_request(request)
        path = request.path
        if not path.startswith(API_PREFIXES):
            handler = _chain(page_middlewares, handler)

        is_cors = path in cors.CORS_PATHS
        origin = request.headers.get("Origin") if is_cors else None
        allowed: str | None = None  # the origin once it is found registered
        response: web.StreamResponse
        try:
            try:
                if origin is not None:
                    allowed = await cors.allowed_origin(request, origin)
                if is_cors and request.method == "OPTIONS":
                    # The preflight response carries its CORS headers already.
                    response = cors.preflight_response(allowed)
                    is_cors = False
                else:
                    response = await handler(request)
            except Exception as exc:  # noqa: BLE001 (error_response logs)
                response = error_response(request, exc)
            if is_cors:
                cors.add_headers(response, allowed)
        except web.HTTPException as exc:
            # Redirects and HTTP errors on API paths, which aiohttp sends itself.
            if is_cors:
                cors.add_headers(exc, allowed)
            exc.headers.update(SECURITY_HEADERS)
            exc.headers["X-Request-ID"] = request_id
            raise

        response.headers.update(SECURITY_HEADERS)
        response.headers["X-Request-ID"] = request_id
        return response

    return middleware


def _chain(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    for middleware in reversed(middlewares):
        handler = partial(middleware, handler=handler)
    return handler
