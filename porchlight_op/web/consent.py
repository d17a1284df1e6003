"""The consent page: which scopes a client receives (OIDC Core 3.1.2.4).

The authorization request waits in Redis while the page is shown, as it does
while the login form is shown. ConsentStore keeps the granted scopes per user
and client, so the page appears again only for scopes not granted yet.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import errors
from ..log import security_event
from ..oidc.consent import needs_consent
from ..oidc.provider import Authentication, AuthorizationError, AuthorizationRequest
from . import params as parsing
from .i18n import UI_LOCALES
from .keys import ACCOUNTS, CONSENTS, PENDING, PROVIDER, REQUEST_ID, SETTINGS
from .login_session import Login, check_csrf, csrf_token, current_login

# Plain-language descriptions of the claims each scope releases (OIDC Core 5.4).
SCOPE_DESCRIPTIONS = {
    "openid": "Who you are: your account identifier on this server",
    "profile": "Your name, username, picture and other profile details",
    "email": "Your email address and whether it is verified",
    "address": "Your postal address",
    "phone": "Your phone number and whether it is verified",
    "offline_access": "Access to your account while you are not using the application",
}
EXPIRED = (
    "This consent request has expired or was already used. "
    "Go back to the application and start again."
)
DECISIONS = ("allow", "deny")


def requested_scopes(auth_request: AuthorizationRequest) -> list[str]:
    """Return the requested scopes the client may have, in request order."""
    return [str(scope) for scope in auth_request.message.get("scope", [])]


async def consent_needed(
    request: web.Request, auth_request: AuthorizationRequest, sub: str
) -> bool:
    """Tell whether the user must see the consent page before a code is issued."""
    client = auth_request.client
    granted = await request.app[CONSENTS].granted(sub, client.client_id)
    return needs_consent(
        client, requested_scopes(auth_request), granted, auth_request.prompt
    )


async def ask_consent(
    request: web.Request, auth_request: AuthorizationRequest, sub: str
) -> web.StreamResponse:
    """Park the request for this user and redirect to the consent page."""
    settings = request.app[SETTINGS]
    parked = {"sub": sub, "params": dict(auth_request.params)}
    request_id = await request.app[PENDING].put(
        parked, settings.pending_request_lifetime
    )
    raise web.HTTPFound(f"/consent?request={request_id}")


async def issue_code(
    request: web.Request, auth_request: AuthorizationRequest, login: Login
) -> web.StreamResponse:
    """Issue the code for this login and redirect to the client."""
    location = await request.app[PROVIDER].issue_code(
        auth_request,
        Authentication(login.sub, login.auth_time, login.amr, login.sid),
    )
    raise web.HTTPFound(location)


@aiohttp_jinja2.template("consent.html")
async def consent_page(request: web.Request) -> dict[str, object]:
    """GET /consent: the scopes the client asks for, with allow and deny."""
    try:
        request_id = parsing.query_params(request).get("request", "")
    except parsing.MalformedParameters:
        raise errors.UnverifiedClient(EXPIRED) from None
    parked = await request.app[PENDING].get(request_id)
    params, login = _resume(parked, await current_login(request))
    request[UI_LOCALES] = params.get("ui_locales", "")

    provider = request.app[PROVIDER]
    try:
        auth_request = await provider.authorization_request(params)
    except AuthorizationError as failure:
        raise web.HTTPFound(provider.error_redirect(failure)) from None
    user = await request.app[ACCOUNTS].get(login.sub)
    client = auth_request.client
    return {
        "csrf_token": await csrf_token(request),
        "request_id": request_id,
        "client_name": client.name or client.client_id,
        "username": user.username if user else "",
        "scopes": [
            SCOPE_DESCRIPTIONS.get(scope, scope)
            for scope in requested_scopes(auth_request)
        ],
    }


async def consent_submit(request: web.Request) -> web.StreamResponse:
    """POST /consent: record the user's decision and resume the request."""
    form = await parsing.form_params(request)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason="The form expired; reload the page.")
    decision = form.get("decision")
    if decision not in DECISIONS:
        raise web.HTTPBadRequest(reason="The form has no decision.")

    parked = await request.app[PENDING].take(form.get("request", ""))
    params, login = _resume(parked, await current_login(request))
    provider = request.app[PROVIDER]
    try:
        auth_request = await provider.authorization_request(params)
        return await _apply_decision(request, auth_request, decision, login)
    except AuthorizationError as failure:
        raise web.HTTPFound(provider.error_redirect(failure)) from None


async def _apply_decision(
    request: web.Request,
    auth_request: AuthorizationRequest,
    decision: str,
    login: Login,
) -> web.StreamResponse:
    client_id = auth_request.client.client_id
    if decision != "allow":
        security_event(
            "consent_denied",
            request_id=request[REQUEST_ID],
            client_id=client_id,
            sub=login.sub,
        )
        raise AuthorizationError(
            auth_request, errors.AccessDenied("the user denied the request")
        )

    scopes = requested_scopes(auth_request)
    await request.app[CONSENTS].grant(login.sub, client_id, scopes)
    security_event(
        "consent_granted",
        request_id=request[REQUEST_ID],
        client_id=client_id,
        sub=login.sub,
        scope=",".join(scopes),
    )
    return await issue_code(request, auth_request, login)


def _resume(
    parked: dict[str, Any] | None, login: Login | None
) -> tuple[dict[str, str], Login]:
    """Return the parked request's parameters and the login it was parked for.

    A request parked for another login (the user signed out or switched
    accounts in another tab) is treated as expired.
    """
    if parked is None or login is None or parked.get("sub") != login.sub:
        raise errors.UnverifiedClient(EXPIRED)
    params = parked.get("params")
    if not isinstance(params, dict):
        raise errors.UnverifiedClient(EXPIRED)
    return params, login
