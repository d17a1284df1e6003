"""Endpoints for clients managing their tokens: revocation and introspection."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import errors
from ..log import WEB
from . import params as parsing
from .keys import PROVIDER, REQUEST_ID
from .middlewares import NO_STORE, json_response, oauth_error

logger = logging.getLogger(WEB)


async def revoke(request: web.Request) -> web.Response:
    """POST /revoke (RFC 7009 2): 200 whether or not the token was known."""
    authorization = request.headers.get("Authorization")
    try:
        form = await parsing.form_params(request)
        await request.app[PROVIDER].revoke(form, authorization)
    except parsing.MalformedParameters as exc:
        return oauth_error(errors.InvalidRequest(exc.problem))
    except errors.InvalidClient as exc:
        return client_error(request, exc, authorization)
    return web.Response(status=200, headers=NO_STORE)


async def introspect(request: web.Request) -> web.Response:
    """POST /introspect (RFC 7662 2): the token's state, for its own client only."""
    authorization = request.headers.get("Authorization")
    try:
        form = await parsing.form_params(request)
        body = await request.app[PROVIDER].introspect(form, authorization)
    except parsing.MalformedParameters as exc:
        return oauth_error(errors.InvalidRequest(exc.problem))
    except errors.InvalidClient as exc:
        return client_error(request, exc, authorization)
    return json_response(body, headers=NO_STORE)


def client_error(
    request: web.Request, error: errors.InvalidClient, authorization: str | None
) -> web.Response:
    """Build the 401 invalid_client response, with the challenge of RFC 6749 5.2."""
    response = oauth_error(error)
    if authorization is not None:
        response.headers["WWW-Authenticate"] = 'Basic realm="porchlight"'
    logger.info(
        "client authentication failed on %s request_id=%s",
        request.path,
        request[REQUEST_ID],
    )
    return response
