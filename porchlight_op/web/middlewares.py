"""Middlewares: request ids, security headers and one place that renders errors."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from .. import errors, log
from ..log import WEB
from .keys import REQUEST_ID
from .params import MalformedParameters

logger = logging.getLogger(WEB)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pages load only our own stylesheet and script (the passkey ceremonies, which
# fetch their options from the same origin); nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    "script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Endpoints whose callers are programs, which get JSON errors rather than pages.
API_PREFIXES = (
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/jwks",
    "/.well-known/",
    "/health/",
)


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id for the logs; echo it as X-Request-ID."""
    request[REQUEST_ID] = secrets.token_hex(8)
    log.request_id.set(request[REQUEST_ID])
    response = await handler(request)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    return response


@web.middleware
async def security_headers(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Add the headers every response carries."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure; no traceback or exception text reaches a client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and not _is_api(request):
            response = page(request, exc.status, exc.reason, _http_message(exc.status))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        raise
    except MalformedParameters as exc:
        if _is_api(request):
            return oauth_error(errors.InvalidRequest(exc.problem))
        return page(request, 400, "Invalid request", "The request is malformed.")
    except errors.UnverifiedClient as exc:
        return page(request, 400, "Invalid request", exc.description)
    except errors.OAuthError as exc:
        return oauth_error(exc)
    except (errors.StorageUnavailable, RedisError, RedisClusterException) as exc:
        logger.warning(
            "storage unavailable for %s %s: %s",
            request.method,
            _path_for_log(request),
            type(exc).__name__,
        )
        return unavailable(request)
    except Exception:
        logger.exception(
            "unhandled error on %s %s", request.method, _path_for_log(request)
        )
        if _is_api(request):
            return oauth_error(errors.ServerError("internal error"))
        return page(request, 500, "Server error", "Something went wrong on our side.")


def oauth_error(error: errors.OAuthError) -> web.Response:
    """Render a JSON error body as in RFC 6749 5.2."""
    headers = dict(NO_STORE)
    if error.status == 503:
        headers["Retry-After"] = "1"
    return web.json_response(error.to_dict(), status=error.status, headers=headers)


def unavailable(request: web.Request) -> web.Response:
    """503 with a body that suits the caller."""
    if _is_api(request):
        return oauth_error(errors.TemporarilyUnavailable("storage is unavailable"))
    response = page(
        request,
        503,
        "Temporarily unavailable",
        "The service is briefly unavailable. Please try again in a moment.",
    )
    response.headers["Retry-After"] = "1"
    return response


def page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """Render an HTML error page."""
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"title": title, "message": message}, status=status
    )
    response.headers.update(NO_STORE)
    return response


def _path_for_log(request: web.Request) -> str:
    """Return the matched route's pattern, else the path.

    The pattern keeps path parameters out of logs, among them the token of an
    invitation link (/register/{token}), which works like a password.
    """
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _is_api(request: web.Request) -> bool:
    return request.path.startswith(API_PREFIXES)


def _http_message(status: int) -> str:
    if status == 404:
        return "There is no page at this address."
    if status == 405:
        return "This address does not accept that method."
    return "The request could not be processed."
