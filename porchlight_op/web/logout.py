"""The end_session endpoint (RP-Initiated Logout 1.0) and the back-channel sender.

A request tied to the browser's user by a valid id_token_hint logs out at
once. Any other request gets a confirmation form first, so that a third-party
page cannot sign the user out with a plain link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import aiohttp
import aiohttp_jinja2
from aiohttp import web

from .. import errors
from ..log import WEB
from ..oidc.backchannel import BackchannelSender
from ..oidc.logout import Logout, LogoutRequest
from ..store.clients import ClientStore
from ..store.login_sessions import LoginSessionGrants
from ..store.logout_jobs import LogoutJobs
from . import params as parsing
from .i18n import UI_LOCALES
from .keys import LOGOUT, PROVIDER, REDIS, SETTINGS
from .login_session import Login, check_csrf, csrf_token, current_login, end_login
from .middlewares import NO_STORE

logger = logging.getLogger(WEB)

# Seconds shutdown waits for the sender loop to notice it should stop.
SENDER_STOP_TIMEOUT = 5.0

# The parameters a confirmation form carries over. ui_locales picks the language
# of the logout pages, as it does for the login pages.
LOGOUT_PARAMETERS = (
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)
# The confirmation form's submit button that keeps the user signed in.
CANCEL_DECISION = "cancel"


async def logout(request: web.Request) -> web.StreamResponse:
    """GET or POST /logout: log out now, or ask the user to confirm."""
    params = await _read_params(request)
    _set_locale(request, params)
    logout_request = await request.app[LOGOUT].check_request(params)
    login = await current_login(request)
    if login is None:
        return _finish(request, logout_request)
    if logout_request.hint_sub != login.sub:
        return await _confirmation_page(request, logout_request)

    await _end(request, login)
    return _finish(request, logout_request)


async def confirm(request: web.Request) -> web.StreamResponse:
    """POST /logout/confirm: the confirmation form, checked against CSRF."""
    form = await _read_params(request)
    _set_locale(request, form)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason="The form expired; reload the page.")
    if form.get("decision") == CANCEL_DECISION and await current_login(request):
        return _cancelled(request)

    carried = {name: form[name] for name in LOGOUT_PARAMETERS if name in form}
    logout_request = await request.app[LOGOUT].check_request(carried)
    login = await current_login(request)
    if login is not None:
        await _end(request, login)
    return _finish(request, logout_request)


def _cancelled(request: web.Request) -> web.Response:
    """Render the page that confirms the login is kept; no redirect to the client.

    RP-Initiated Logout 1.0 section 2 defines only what follows a "yes". The
    post_logout_redirect_uri is where the client expects the browser after a
    logout, and the client may take that visit with its state as proof of one.
    So a cancel stays on our own page, and the user returns to the client. A
    cancel after the login has already ended is handled like a logout.
    """
    logger.info("logout cancelled by the user")
    response = aiohttp_jinja2.render_template("logout_cancelled.html", request, {})
    response.headers.update(NO_STORE)
    return response


def _set_locale(request: web.Request, params: Mapping[str, str]) -> None:
    ui_locales = params.get("ui_locales")
    if ui_locales:
        request[UI_LOCALES] = ui_locales


async def _read_params(request: web.Request) -> dict[str, str]:
    try:
        if request.method == "POST":
            return await parsing.form_params(request)
        return parsing.query_params(request)
    except parsing.MalformedParameters as exc:
        raise errors.UnverifiedClient(exc.problem) from None


async def _end(request: web.Request, login: Login) -> None:
    # The browser session goes first, so no new grant joins the login session
    # while its grants are being revoked.
    # NOTE: if Redis fails between the two steps, the browser is logged out but
    # the grants stay valid until their tokens expire.
    await end_login(request)
    await request.app[LOGOUT].end_session(login.sub, login.sid)


def _finish(request: web.Request, logout_request: LogoutRequest) -> web.StreamResponse:
    location = logout_request.redirect_location()
    if location is not None:
        raise web.HTTPFound(location, headers=NO_STORE)
    response = aiohttp_jinja2.render_template("logged_out.html", request, {})
    response.headers.update(NO_STORE)
    return response


async def _confirmation_page(
    request: web.Request, logout_request: LogoutRequest
) -> web.Response:
    client = logout_request.client
    context = {
        "csrf_token": await csrf_token(request),
        "client_name": (client.name or client.client_id) if client else "",
        "params": _carried(logout_request.params),
    }
    response = aiohttp_jinja2.render_template("logout.html", request, context)
    response.headers.update(NO_STORE)
    return response


def _carried(params: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(name, params[name]) for name in LOGOUT_PARAMETERS if name in params]


async def logout_context(app: web.Application) -> AsyncIterator[None]:
    """Build the logout service and run this worker's back-channel sender."""
    settings = app[SETTINGS]
    client = app[REDIS]
    jobs = LogoutJobs(client)
    clients = ClientStore(client)
    service = Logout(
        app[PROVIDER].server.keyjar,
        settings.issuer,
        clients,
        LoginSessionGrants(client, settings.session_max_age),
        jobs,
    )
    app[LOGOUT] = service

    timeout = aiohttp.ClientTimeout(total=settings.backchannel_logout_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        sender = BackchannelSender(jobs, clients, service.logout_token, http)
        task = asyncio.create_task(sender.run())
        yield
        # The flag ends the loop even if a cancellation is lost inside a Redis
        # call whose timeout fires at the same moment (Python 3.11 asyncio), and
        # the bounded wait keeps shutdown finite in any case.
        sender.stop()
        task.cancel()
        await asyncio.wait({task}, timeout=SENDER_STOP_TIMEOUT)
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("back-channel sender failed: %r", task.exception())
        await sender.drain(settings.backchannel_logout_timeout + 1)
