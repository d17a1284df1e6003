"""The browser's login session, kept by aiohttp-session in Redis.

The session records who logged in and when. It ends after an idle period or
after an absolute limit, whichever comes first. Its id changes at login.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import get_session, new_session

from ..store.user_logins import LoginEntry
from .keys import REDIS, SETTINGS, USER_SESSIONS
from .user_agent import summarize_user_agent

CSRF_FIELD = "csrf_token"
SID_FIELD = "sid"
# The management area's sign-in in progress (state, nonce, PKCE verifier). It
# survives the session id change at login, like the CSRF token, because the
# login happens in the middle of that sign-in.
MANAGE_FLOW_FIELD = "manage_flow"
# Refresh the idle timer at most this often, to spare a Redis write per request.
TOUCH_INTERVAL = 60
# Set at login, when the login gets its entry in the user's login index
# (UserLogins). A session without it predates the index, so revocation cannot
# reach it, and it counts as ended.
INDEXED_FIELD = "indexed"


@dataclass(frozen=True)
class Login:
    """The user signed in to this browser."""

    sub: str
    auth_time: int
    amr: tuple[str, ...]
    sid: str = ""  # login session id: the `sid` of ID tokens and logout tokens


# The login as checked earlier in the same request, so the index is read once.
_CHECKED_LOGIN: web.RequestKey[Login | None] = web.RequestKey("checked_login")


async def current_login(request: web.Request) -> Login | None:
    """Return the live login of this browser, or None once it has ended.

    A login ends after its limits pass, or when its entry leaves the user's
    login index, which is how another browser or worker revokes it.
    """
    if _CHECKED_LOGIN in request:
        return request[_CHECKED_LOGIN]
    login = await _check_login(request)
    request[_CHECKED_LOGIN] = login
    return login


async def _check_login(request: web.Request) -> Login | None:
    session = await get_session(request)
    sub = session.get("sub")
    if not isinstance(sub, str):
        return None
    settings = request.app[SETTINGS]
    now = int(time.time())
    auth_time = int(session.get("auth_time", 0))
    last_seen = int(session.get("last_seen", 0))
    if now - auth_time > settings.session_max_age:
        session.invalidate()
        return None
    if now - last_seen > settings.session_idle_timeout:
        session.invalidate()
        return None
    sid = session.get(SID_FIELD)
    if not session.get(INDEXED_FIELD) or not isinstance(sid, str):
        session.invalidate()
        return None
    touch = now - last_seen > TOUCH_INTERVAL
    if not await _indexed(request, sub, sid, touch):
        session.invalidate()
        return None
    if touch:
        session["last_seen"] = now
    return Login(sub, auth_time, tuple(session.get("amr", ("pwd",))), sid)


async def _indexed(request: web.Request, sub: str, sid: str, touch: bool) -> bool:
    """Check the login's index entry with one Redis command, touching it if due."""
    logins = request.app[USER_SESSIONS].logins
    if touch:
        return await logins.touch(sub, sid, int(time.time()))
    return await logins.exists(sub, sid)


def _entry(request: web.Request, login: Login, now: int) -> LoginEntry:
    return LoginEntry(
        sid=login.sid,
        created=login.auth_time,
        last_seen=now,
        amr=login.amr,
        user_agent=summarize_user_agent(request.headers.get("User-Agent")),
        address=request.remote or "",
    )


async def start_login(request: web.Request, sub: str, amr: tuple[str, ...]) -> Login:
    """Record a fresh login under a new session id (no session fixation)."""
    old = await get_session(request)
    csrf = old.get(CSRF_FIELD)
    manage_flow = old.get(MANAGE_FLOW_FIELD)
    if old.identity is not None:
        # aiohttp-session stores a session under "<cookie name>_<id>".
        settings = request.app[SETTINGS]
        await request.app[REDIS].delete(f"{settings.cookie_name}_{old.identity}")
    old_sub, old_sid = old.get("sub"), old.get(SID_FIELD)
    if isinstance(old_sub, str) and isinstance(old_sid, str):
        # The login being replaced no longer belongs to this browser.
        await request.app[USER_SESSIONS].logins.remove(old_sub, old_sid)
    old.invalidate()
    session = await new_session(request)
    now = int(time.time())
    sid = new_sid()
    session.update(
        {
            "sub": sub,
            "auth_time": now,
            "last_seen": now,
            "amr": list(amr),
            SID_FIELD: sid,
        }
    )
    if csrf is not None:
        session[CSRF_FIELD] = csrf
    if manage_flow is not None:
        session[MANAGE_FLOW_FIELD] = manage_flow
    login = Login(sub, now, amr, sid)
    await request.app[USER_SESSIONS].logins.add(sub, _entry(request, login, now))
    session[INDEXED_FIELD] = True
    request[_CHECKED_LOGIN] = login
    return login


async def end_login(request: web.Request) -> None:
    """End the browser session: delete it and its login index entry in Redis."""
    session = await get_session(request)
    sub, sid = session.get("sub"), session.get(SID_FIELD)
    if isinstance(sub, str) and isinstance(sid, str):
        await request.app[USER_SESSIONS].logins.remove(sub, sid)
    request[_CHECKED_LOGIN] = None
    if session.identity is not None:
        settings = request.app[SETTINGS]
        await request.app[REDIS].delete(f"{settings.cookie_name}_{session.identity}")
    session.invalidate()


def new_sid() -> str:
    """Return a new login session id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


async def csrf_token(request: web.Request) -> str:
    """Return the session's CSRF token, creating it on first use."""
    session = await get_session(request)
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


async def check_csrf(request: web.Request, presented: str | None) -> bool:
    """Compare a form's CSRF token with the session's, in constant time."""
    session = await get_session(request)
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or presented is None:
        return False
    # aiohttp decodes header bytes that are not UTF-8 to lone surrogates, which
    # encode() rejects. Tokens are ASCII, so such a value cannot match.
    if not presented.isascii():
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
