"""Request ids, security headers and the one place that renders errors."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from .. import errors, fastjson, log
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


def start_request(request: web.Request) -> str:
    """Give the request an id for the logs and return it, for X-Request-ID."""
    identifier = secrets.token_hex(8)
    request[REQUEST_ID] = identifier
    log.request_id.set(identifier)
    return identifier


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """Render a failure, so no traceback or exception text reaches a client.

    Call it from the `except` block that caught `exc`. It raises `exc` again
    for an HTTP exception that aiohttp itself sends: a redirect or another
    status below 400, and any HTTP error on an API path.
    """
    if isinstance(exc, web.HTTPException):
        if exc.status >= 400 and not _is_api(request):
            response = page(request, exc.status, exc.reason, _http_message(exc.status))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        raise exc
    if isinstance(exc, MalformedParameters):
        if _is_api(request):
            return oauth_error(errors.InvalidRequest(exc.problem))
        return page(request, 400, "Invalid request", "The request is malformed.")
    if isinstance(exc, errors.UnverifiedClient):
        return page(request, 400, "Invalid request", exc.description)
    if isinstance(exc, errors.OAuthError):
        return oauth_error(exc)
    if isinstance(exc, (errors.StorageUnavailable, RedisError, RedisClusterException)):
        logger.warning(
            "storage unavailable for %s %s: %s",
            request.method,
            _path_for_log(request),
            type(exc).__name__,
        )
        return unavailable(request)
    logger.error(
        "unhandled error on %s %s",
        request.method,
        _path_for_log(request),
        exc_info=exc,
    )
    if _is_api(request):
        return oauth_error(errors.ServerError("internal error"))
    return page(request, 500, "Server error", "Something went wrong on our side.")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Build a JSON response as web.json_response does, encoded by orjson."""
    return web.Response(
        body=fastjson.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def oauth_error(error: errors.OAuthError) -> web.Response:
    """Render a JSON error body as in RFC 6749 5.2."""
    headers = dict(NO_STORE)
    if error.status == 503:
        headers["Retry-After"] = "1"
    return json_response(error.to_dict(), status=error.status, headers=headers)


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
    # The request is passed as well as set by the context processors, which
    # API requests skip, so that page() renders the same for every path.
    context = {"request": request, "title": title, "message": message}
    response = aiohttp_jinja2.render_template(
        "error.html", request, context, status=status
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
