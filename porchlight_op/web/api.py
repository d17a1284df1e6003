"""Endpoints for programs: discovery, JWKS, token, userinfo and health."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from .. import errors
from ..log import WEB
from . import params as parsing
from .keys import PROVIDER, REDIS, REQUEST_ID
from .middlewares import NO_STORE, json_response, oauth_error

logger = logging.getLogger(WEB)

# Metadata changes only with a new release or a key rotation.
METADATA_CACHE = {"Cache-Control": "public, max-age=300"}


async def discovery(request: web.Request) -> web.Response:
    """GET /.well-known/openid-configuration (OIDC Discovery 4)."""
    info = request.app[PROVIDER].provider_info()
    return json_response(info, headers=METADATA_CACHE)


async def jwks(request: web.Request) -> web.Response:
    """GET /jwks: the public keys ID tokens are signed with."""
    return json_response(request.app[PROVIDER].jwks(), headers=METADATA_CACHE)


async def token(request: web.Request) -> web.Response:
    """POST /token (RFC 6749 3.2)."""
    authorization = request.headers.get("Authorization")
    try:
        form = await parsing.form_params(request)
        body = await request.app[PROVIDER].token(form, authorization)
    except parsing.MalformedParameters as exc:
        return oauth_error(errors.InvalidRequest(exc.problem))
    except errors.InvalidClient as exc:
        response = oauth_error(exc)
        if authorization is not None:
            # RFC 6749 5.2: name the scheme the client tried.
            response.headers["WWW-Authenticate"] = 'Basic realm="porchlight"'
        logger.info("client authentication failed request_id=%s", request[REQUEST_ID])
        return response
    return json_response(body, headers=NO_STORE)


async def userinfo(request: web.Request) -> web.Response:
    """GET or POST /userinfo (OIDC Core 5.3, RFC 6750 2)."""
    try:
        access_token = await _bearer_token(request)
    except errors.OAuthError as exc:
        return _bearer_error(exc)
    if access_token is None:
        # RFC 6750 3.1: no error code when the request had no credentials.
        return json_response(
            {"error": "invalid_token", "error_description": "no access token"},
            status=401,
            headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="porchlight"'},
        )
    try:
        claims = await request.app[PROVIDER].userinfo(access_token)
    except errors.InvalidToken as exc:
        return _bearer_error(exc)
    return json_response(claims, headers=NO_STORE)


async def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    from_header = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise errors.InvalidRequest(
                "the Authorization header is not a Bearer token"
            )
        from_header = value.strip()

    from_body = None
    if request.method == "POST" and request.content_type == parsing.FORM_TYPE:
        try:
            form = await parsing.form_params(request)
        except parsing.MalformedParameters as exc:
            raise errors.InvalidRequest(exc.problem) from None
        from_body = form.get("access_token")

    if from_header is not None and from_body is not None:
        raise errors.InvalidRequest("the access token was sent in more than one way")
    return from_header or from_body


def _bearer_error(error: errors.OAuthError) -> web.Response:
    challenge = f'Bearer realm="porchlight", error="{error.error}"'
    if error.description:
        challenge += f', error_description="{error.description}"'
    response = oauth_error(error)
    response.headers["WWW-Authenticate"] = challenge
    return response


async def live(request: web.Request) -> web.Response:
    """GET /health/live: report that the process is running."""
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """GET /health/ready: report whether Redis replies to PING."""
    body: dict[str, Any]
    try:
        await request.app[REDIS].ping()
    except (RedisError, RedisClusterException) as exc:
        body = {"status": "unavailable", "redis": type(exc).__name__}
        return json_response(body, status=503, headers={"Retry-After": "1"})
    return json_response({"status": "ok", "redis": "ok"})
