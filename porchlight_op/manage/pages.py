"""The management area's pages: sign-in callback, credentials and profile."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from ..accounts.throttle import lock_message
from ..log import WEB
from ..models import ADMIN_GROUP, InvalidClaim, User
from ..web.keys import ACCOUNTS, PASSKEYS, THROTTLE
from ..web.login_session import check_csrf, csrf_token
from ..web.middlewares import NO_STORE, page
from ..web.params import posted_form
from ..web.passkeys import describe_passkeys
from . import login
from .client import CALLBACK_PATH
from .sessions import setup_session_routes

logger = logging.getLogger(WEB)

PROFILE_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "nickname",
    "preferred_username",
    "email",
    "phone_number",
    "picture",
    "locale",
)
CURRENT_PASSWORD_WRONG = "The current password is wrong."  # noqa: S105 - a message
# NOTE: a limit chosen for a profile form field, not one from a standard.
MAX_FIELD_LENGTH = 512
# Changing one of these claims clears its *_verified flag.
VERIFIED_FLAGS = {"email": "email_verified", "phone_number": "phone_number_verified"}
# The signed-in management user of a request, set by _signed_in_user.
MANAGE_USER: web.RequestKey[User] = web.RequestKey("manage_user")


def setup_manage_routes(router: web.UrlDispatcher) -> None:
    """Register the management area's routes."""
    router.add_get("/manage", home)
    router.add_get(CALLBACK_PATH, callback)
    router.add_get("/manage/credentials", credentials_page)
    router.add_post("/manage/credentials", credentials_submit)
    router.add_get("/manage/profile", profile_page)
    router.add_post("/manage/profile", profile_submit)
    setup_session_routes(router)


async def home(request: web.Request) -> web.Response:
    """Send a signed-in user to the credentials page, others to the OP's login."""
    if await login.management_sub(request) is None:
        await login.start(request, login.HOME_PATH)
    raise web.HTTPFound(login.HOME_PATH)


async def callback(request: web.Request) -> web.Response:
    """Finish the sign-in and continue to the page that asked for it."""
    try:
        next_path = await login.finish(request)
    except login.ManageLoginError as error:
        logger.info("management sign-in failed: %s", error)
        return page(request, 400, "Sign-in failed", str(error))
    raise web.HTTPFound(next_path)


async def credentials_page(request: web.Request) -> web.Response:
    """Show whether a password is set and the form to change it."""
    user = await _signed_in_user(request)
    return await _render_credentials(request, user, None, 200)


async def credentials_submit(request: web.Request) -> web.Response:
    """Change the password after checking the CSRF token and current password."""
    user = await _signed_in_user(request)
    form = await posted_form(request)
    if not await check_csrf(request, _field(form, "csrf_token")):
        logger.info("management form rejected: invalid CSRF token, sub=%s", user.sub)
        return page(request, 403, "Form expired", "Reload the page and try again.")
    accounts = request.app[ACCOUNTS]
    new = _field(form, "new_password") or ""
    if user.password_hash is not None:
        current = _field(form, "current_password") or ""
        problem = await check_current_password(request, user, current)
        if problem is not None:
            logger.info("password change rejected: %s, sub=%s", problem, user.sub)
            return await _render_credentials(request, user, problem, 400)
    if new != _field(form, "new_password_confirm"):
        return await _render_credentials(
            request, user, "The new passwords do not match.", 400
        )
    try:
        user = await accounts.set_password(user.sub, new)
    except ValueError as error:
        return await _render_credentials(request, user, str(error), 400)
    return await _render_credentials(request, user, None, 200, saved=True)


async def check_current_password(
    request: web.Request, user: User, current: str
) -> str | None:
    """Check the signed-in user's current password under the login throttle.

    Returns the message to show, or None when the password is right. Guesses
    here count against the same limits as guesses at the login form.
    """
    throttle = request.app[THROTTLE]
    address = request.remote or "unknown"
    verdict = await throttle.check(user.username, address)
    if verdict.locked_for:
        return lock_message(verdict.locked_for)
    if verdict.delay:
        await asyncio.sleep(verdict.delay)
    if await request.app[ACCOUNTS].authenticate(user.username, current) is None:
        locked_for = await throttle.failed(user.username, address)
        return lock_message(locked_for) if locked_for else CURRENT_PASSWORD_WRONG
    await throttle.succeeded(user.username)
    return None


async def profile_page(request: web.Request) -> web.Response:
    """Show the form with the user's standard profile claims."""
    user = await _signed_in_user(request)
    return await _render_profile(request, dict(user.claims), None, 200)


async def profile_submit(request: web.Request) -> web.Response:
    """Save the profile claims. An empty field removes its claim."""
    user = await _signed_in_user(request)
    form = await posted_form(request)
    if not await check_csrf(request, _field(form, "csrf_token")):
        logger.info("management form rejected: invalid CSRF token, sub=%s", user.sub)
        return page(request, 403, "Form expired", "Reload the page and try again.")
    claims, problem = merge_profile_form(user.claims, form)
    if problem is not None:
        logger.info("profile change rejected: %s, sub=%s", problem, user.sub)
        return await _render_profile(request, dict(user.claims), problem, 400)
    try:
        user = await request.app[ACCOUNTS].update_claims(user.sub, claims)
    except InvalidClaim as error:
        logger.info("profile change rejected: %s, sub=%s", error, user.sub)
        return await _render_profile(request, claims, str(error), 400)
    return await _render_profile(request, dict(user.claims), None, 200, saved=True)


def merge_profile_form(current: Any, form: Any) -> tuple[dict[str, Any], str | None]:
    """Apply a profile form to a copy of the claims; return it and the first problem.

    An empty field removes its claim, and a changed email or phone number
    drops its *_verified flag. Claims outside PROFILE_CLAIMS stay as they are.
    """
    claims: dict[str, Any] = dict(current)
    for name in PROFILE_CLAIMS:
        value = (_field(form, name) or "").strip()
        problem = _check_profile_value(name, value)
        if problem is not None:
            return claims, problem
        if value != claims.get(name, ""):
            claims.pop(VERIFIED_FLAGS.get(name, ""), None)
        if value:
            claims[name] = value
        else:
            claims.pop(name, None)
    return claims, None


def _check_profile_value(name: str, value: str) -> str | None:
    """Return why a profile form value is invalid, or None when it is valid."""
    if len(value) > MAX_FIELD_LENGTH:
        return f"invalid {name}: longer than {MAX_FIELD_LENGTH} characters"
    if name == "picture" and value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "invalid picture: expected an http or https URL"
    if name == "email" and value:
        local, _, domain = value.partition("@")
        if not local or not domain or "@" in domain:
            return "invalid email: expected an address like name@example.org"
    return None


async def _signed_in_user(request: web.Request) -> User:
    """Return the signed-in user, or start the sign-in for this page."""
    sub = await login.management_sub(request)
    user = None if sub is None else await request.app[ACCOUNTS].get(sub)
    if user is None or user.disabled:
        await login.start(request, request.path)
    request[MANAGE_USER] = user
    return user


async def _render_credentials(
    request: web.Request,
    user: User,
    error: str | None,
    status: int,
    saved: bool = False,
    notice: str | None = None,
) -> web.Response:
    passkeys = await request.app[PASSKEYS].list(user.sub)
    context = {
        "has_password": user.password_hash is not None,
        "error": error,
        "saved": saved,
        "csrf_token": await csrf_token(request),
        "passkeys": describe_passkeys(passkeys),
        "notice": notice,
    }
    return _render(request, "manage_credentials.html", context, status)


async def _render_profile(
    request: web.Request,
    claims: dict[str, Any],
    error: str | None,
    status: int,
    saved: bool = False,
) -> web.Response:
    context = {
        "fields": [(name, str(claims.get(name, ""))) for name in PROFILE_CLAIMS],
        "error": error,
        "saved": saved,
        "csrf_token": await csrf_token(request),
    }
    return _render(request, "manage_profile.html", context, status)


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int
) -> web.Response:
    user = request.get(MANAGE_USER)
    context = {
        "manage_is_admin": user is not None and ADMIN_GROUP in user.groups,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(NO_STORE)
    return response


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
