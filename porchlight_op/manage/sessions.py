"""The management area's sessions page: live logins and granted clients, with revoke.

Ending a login revokes the grants issued under it and queues back-channel
logout tokens, as RP-initiated logout does. Revoking a client deletes every
grant of the user at that client and the remembered consent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..log import WEB
from ..models import User
from ..oidc.user_sessions import ClientAccess
from ..store.user_logins import LoginEntry
from ..web.keys import ACCOUNTS, USER_SESSIONS
from ..web.login_session import (
    Login,
    check_csrf,
    csrf_token,
    current_login,
    end_login,
)
from ..web.middlewares import NO_STORE, page
from ..web.params import posted_form
from . import login

logger = logging.getLogger(WEB)

PAGE_PATH = "/manage/sessions"
END_PATH = "/manage/sessions/end"
REVOKE_PATH = "/manage/sessions/revoke"
# The confirmations the page shows after a redirect, by the `done` parameter.
NOTICES = {
    "ended": "The session was ended.",
    "revoked": "The application's access was revoked.",
}
# Names shown for the amr values of a login (RFC 8176 2). "user" only means
# that the passkey verified the user, so it is not shown on its own.
METHOD_NAMES = {"pwd": "Password", "hwk": "Passkey", "swk": "Passkey"}
HIDDEN_METHODS = {"user"}
# Upper bound for a sid or client_id from a form; longer values match nothing.
MAX_FIELD_LENGTH = 256


def setup_session_routes(router: web.UrlDispatcher) -> None:
    """Register the sessions page and its two forms."""
    router.add_get(PAGE_PATH, sessions_page)
    router.add_post(END_PATH, end_session)
    router.add_post(REVOKE_PATH, revoke_client)


async def sessions_page(request: web.Request) -> web.Response:
    """List the user's live logins and the clients they granted access."""
    user = await _signed_in_user(request)
    sessions = request.app[USER_SESSIONS]
    current = await current_login(request)
    logins = await sessions.list_logins(user.sub)
    clients = await sessions.list_clients(user.sub)
    context = {
        "logins": [_login_row(entry, current) for entry in logins],
        "clients": [_client_row(access) for access in clients],
        "notice": NOTICES.get(request.query.get("done", "")),
        "csrf_token": await csrf_token(request),
        "manage_is_admin": "admin" in user.groups,
    }
    response = aiohttp_jinja2.render_template("manage_sessions.html", request, context)
    response.headers.update(NO_STORE)
    return response


async def end_session(request: web.Request) -> web.Response:
    """End one of the user's logins; ending this browser's login signs it out."""
    user = await _signed_in_user(request)
    form = await posted_form(request)
    if not await check_csrf(request, _field(form, "csrf_token")):
        return _form_expired(request, user)
    sid = _field(form, "sid")
    current = await current_login(request)
    revoked = None
    if sid:
        revoked = await request.app[USER_SESSIONS].end_login(user.sub, sid)
    if revoked is None:
        logger.info("session end rejected: no such session, sub=%s", user.sub)
        return page(
            request,
            404,
            "Session not found",
            "This session has ended already or is not one of yours. "
            "Reload the sessions page to see your current sessions.",
        )
    if current is not None and current.sid == sid:
        await end_login(request)
        return page(
            request,
            200,
            "You are signed out",
            "You ended the session of this browser. Sign in again to continue.",
        )
    raise web.HTTPSeeOther(f"{PAGE_PATH}?done=ended", headers=NO_STORE)


async def revoke_client(request: web.Request) -> web.Response:
    """Delete the user's grants at one client and the remembered consent."""
    user = await _signed_in_user(request)
    form = await posted_form(request)
    if not await check_csrf(request, _field(form, "csrf_token")):
        return _form_expired(request, user)
    sessions = request.app[USER_SESSIONS]
    client_id = _field(form, "client_id")
    if client_id and not sessions.revocable(client_id):
        logger.info("client revoke rejected: management client, sub=%s", user.sub)
        return page(
            request,
            400,
            "Cannot revoke this application",
            "This application is the account management you are using. "
            "End the session instead to sign out.",
        )
    granted = {access.client_id for access in await sessions.list_clients(user.sub)}
    if not client_id or client_id not in granted:
        logger.info("client revoke rejected: nothing granted, sub=%s", user.sub)
        return page(
            request,
            404,
            "Application not found",
            "This application has no access to revoke, or it was revoked already. "
            "Reload the sessions page to see your current grants.",
        )
    await sessions.revoke_client(user.sub, client_id)
    raise web.HTTPSeeOther(f"{PAGE_PATH}?done=revoked", headers=NO_STORE)


async def _signed_in_user(request: web.Request) -> User:
    """Return the signed-in user, or start the sign-in back to the sessions page."""
    sub = await login.management_sub(request)
    user = None if sub is None else await request.app[ACCOUNTS].get(sub)
    if user is None or user.disabled:
        await login.start(request, PAGE_PATH)
    return user


def _form_expired(request: web.Request, user: User) -> web.Response:
    logger.info("management form rejected: invalid CSRF token, sub=%s", user.sub)
    return page(request, 403, "Form expired", "Reload the page and try again.")


def _login_row(entry: LoginEntry, current: Login | None) -> dict[str, Any]:
    return {
        "sid": entry.sid,
        "created": _when(entry.created),
        "last_seen": _when(entry.last_seen),
        "methods": _method_names(entry.amr),
        "user_agent": entry.user_agent,
        "address": entry.address,
        "current": current is not None and current.sid == entry.sid,
    }


def _method_names(amr: tuple[str, ...]) -> list[str]:
    names = [METHOD_NAMES.get(value, value) for value in amr]
    shown = [name for name in names if name not in HIDDEN_METHODS]
    return list(dict.fromkeys(shown))


def _client_row(access: ClientAccess) -> dict[str, Any]:
    return {
        "client_id": access.client_id,
        "name": access.name,
        "granted_scopes": " ".join(access.granted_scopes),
        "consented_scopes": " ".join(access.consented_scopes),
        "granted_at": _when(access.granted_at) if access.granted_at else "",
        "revocable": access.revocable,
    }


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or len(value) > MAX_FIELD_LENGTH:
        return None
    return value
