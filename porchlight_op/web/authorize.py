"""The authorization endpoint and the login page (OIDC Core 3.1.2)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import errors
from ..accounts.throttle import lock_message
from ..log import WEB, security_event
from ..oidc.provider import AuthorizationError, AuthorizationRequest
from . import consent
from . import params as parsing
from .i18n import UI_LOCALES
from .keys import (
    ACCOUNTS,
    PASSKEYS,
    PENDING,
    PROVIDER,
    REQUEST_ID,
    SETTINGS,
    THROTTLE,
)
from .login_session import (
    Login,
    check_csrf,
    csrf_token,
    current_login,
    end_login,
    start_login,
)
from .middlewares import NO_STORE

logger = logging.getLogger(WEB)

LOGIN_FAILED = "The username or password is incorrect."


async def authorization(request: web.Request) -> web.StreamResponse:
    """GET or POST /authorization: verify, then send a code or ask to log in."""
    provider = request.app[PROVIDER]
    try:
        params = await _read_params(request)
    except parsing.MalformedParameters as exc:
        # The error goes to the redirect_uri only if that checks out.
        failure = await provider.reject(exc.params, errors.InvalidRequest(exc.problem))
        raise web.HTTPFound(provider.error_redirect(failure)) from None
    _set_ui_locales(request, params)

    try:
        auth_request = await provider.authorization_request(params)
        return await _continue(request, auth_request)
    except AuthorizationError as failure:
        raise web.HTTPFound(provider.error_redirect(failure)) from None


async def _read_params(request: web.Request) -> dict[str, str]:
    if request.method == "POST":
        return await parsing.form_params(request)
    return parsing.query_params(request)


async def _continue(
    request: web.Request, auth_request: AuthorizationRequest
) -> web.StreamResponse:
    """Use a live login that satisfies the request, or ask the user to log in."""
    login = await _usable_login(request, auth_request)
    if login is None:
        return await _ask_login(request, auth_request)
    return await _after_login(request, auth_request, login)


async def _after_login(
    request: web.Request, auth_request: AuthorizationRequest, login: Login
) -> web.StreamResponse:
    """Ask for consent when the request needs it, else issue the code."""
    if await consent.consent_needed(request, auth_request, login.sub):
        if "none" in auth_request.prompt:
            raise AuthorizationError(
                auth_request, errors.ConsentRequired("consent required")
            )
        return await consent.ask_consent(request, auth_request, login.sub)
    return await consent.issue_code(request, auth_request, login)


async def _ask_login(
    request: web.Request, auth_request: AuthorizationRequest
) -> web.StreamResponse:
    """Park the request and show the login form; prompt=none forbids the form."""
    if "none" in auth_request.prompt:
        raise AuthorizationError(auth_request, errors.LoginRequired("login required"))

    settings = request.app[SETTINGS]
    request_id = await request.app[PENDING].put(
        dict(auth_request.params), settings.pending_request_lifetime
    )
    raise web.HTTPFound(f"/login?request={request_id}")


async def _usable_login(
    request: web.Request, auth_request: AuthorizationRequest
) -> Login | None:
    """Return the browser's login if the request accepts it (OIDC Core 3.1.2.1)."""
    login = await current_login(request)
    if login is None:
        return None
    if _login_forced(auth_request):
        return None
    if _login_too_old(login, auth_request):
        return None
    if _other_user_hinted(login, auth_request):
        return None
    user = await request.app[ACCOUNTS].get(login.sub)
    if user is None or user.disabled:
        return None
    return login


def _login_forced(auth_request: AuthorizationRequest) -> bool:
    # One account per browser session: select_account shows the login form,
    # where the user may sign in as someone else.
    return bool(auth_request.prompt & {"login", "select_account"})


def _login_too_old(login: Login, auth_request: AuthorizationRequest) -> bool:
    max_age = auth_request.max_age
    return max_age is not None and time.time() - login.auth_time > max_age


def _other_user_hinted(login: Login, auth_request: AuthorizationRequest) -> bool:
    hinted = auth_request.hinted_sub
    return hinted is not None and hinted != login.sub


@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict[str, object]:
    """GET /login: the username and password form."""
    params = parsing.query_params(request)
    request_id = params.get("request", "")
    pending = None
    if request_id:
        pending = await request.app[PENDING].get(request_id)
        if pending is None:
            raise _expired_request()
        _set_ui_locales(request, pending)
    return {
        "csrf_token": await csrf_token(request),
        "request_id": request_id,
        "username": (pending or {}).get("login_hint", ""),
        "error": None,
    }


async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login: check the password, start the session, resume the request."""
    form = await parsing.form_params(request)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason="The form expired; reload the page.")

    request_id = form.get("request", "")
    username = form.get("username", "")
    throttle = request.app[THROTTLE]
    address = request.remote or "unknown"
    verdict = await throttle.check(username, address)
    if verdict.locked_for:
        security_event(
            "login_throttled", request_id=request[REQUEST_ID], remote=address
        )
        return await _login_again(
            request, request_id, username, lock_message(verdict.locked_for)
        )
    if verdict.delay:
        await asyncio.sleep(verdict.delay)

    user = await request.app[ACCOUNTS].authenticate(username, form.get("password", ""))
    if user is None:
        security_event(
            "login_failed", request_id=request[REQUEST_ID], remote=request.remote
        )
        locked_for = await throttle.failed(username, address)
        error = lock_message(locked_for) if locked_for else LOGIN_FAILED
        return await _login_again(request, request_id, username, error)

    await throttle.succeeded(username)
    return await complete_login(request, request_id, user.sub, ("pwd",))


async def complete_login(
    request: web.Request, request_id: str, sub: str, amr: tuple[str, ...]
) -> web.StreamResponse:
    """Start the session of an authenticated user and resume the pending request."""
    login = await start_login(request, sub, amr)
    # Disabling and credential resets change the user first, then end the
    # user's indexed logins. Reading the user after this login is indexed
    # means a change that raced the credential check either shows here or
    # finds this login to end.
    if not await _still_usable(request, sub, amr):
        await end_login(request)
        logger.info("login ended: account or credential changed meanwhile, sub=%s", sub)
        return await login_again(request, request_id, "")
    security_event(
        "login", request_id=request[REQUEST_ID], sub=sub, remote=request.remote
    )
    if not request_id:
        return aiohttp_jinja2.render_template("signed_in.html", request, {})

    params = await request.app[PENDING].take(request_id)
    if params is None:
        raise _expired_request()
    provider = request.app[PROVIDER]
    try:
        # The login just made satisfies prompt=login and max_age, so only
        # consent is left to check.
        auth_request = await provider.authorization_request(params)
        return await _after_login(request, auth_request, login)
    except AuthorizationError as failure:
        raise web.HTTPFound(provider.error_redirect(failure)) from None


async def _still_usable(request: web.Request, sub: str, amr: tuple[str, ...]) -> bool:
    """Tell whether the account exists, is enabled and still has the method used."""
    user = await request.app[ACCOUNTS].get(sub)
    if user is None or user.disabled:
        return False
    if "pwd" in amr and user.password_hash is None:
        return False
    if "hwk" in amr and not await request.app[PASSKEYS].list(sub):
        return False
    return True


async def _login_again(
    request: web.Request, request_id: str, username: str, error: str = LOGIN_FAILED
) -> web.Response:
    return await login_again(request, request_id, username, error)


async def login_again(
    request: web.Request,
    request_id: str,
    username: str,
    error: str = LOGIN_FAILED,
    status: int = 200,
) -> web.Response:
    """Show the login form again with an error message."""
    pending = await request.app[PENDING].get(request_id) if request_id else None
    if pending is not None:
        _set_ui_locales(request, pending)
    context = {
        "csrf_token": await csrf_token(request),
        "request_id": request_id,
        "username": username,
        "error": error,
    }
    response = aiohttp_jinja2.render_template(
        "login.html", request, context, status=status
    )
    response.headers.update(NO_STORE)
    return response


def _set_ui_locales(request: web.Request, params: Mapping[str, Any]) -> None:
    ui_locales = params.get("ui_locales")
    if isinstance(ui_locales, str):
        request[UI_LOCALES] = ui_locales


def _expired_request() -> errors.UnverifiedClient:
    return errors.UnverifiedClient(
        "This sign-in request has expired or was already used. "
        "Go back to the application and start again."
    )
