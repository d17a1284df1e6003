"""The registration page that redeems a one-time invitation link."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..accounts.service import UsernameTaken, UserNotFound, validate_password
from ..log import WEB, security_event
from ..models import normalize_username
from ..store.invitations import PENDING as INVITATION_PENDING
from ..store.invitations import USED, Invitation, InvitationStore
from . import params as parsing
from .keys import ACCOUNTS, REDIS, REQUEST_ID
from .login_session import check_csrf, csrf_token
from .middlewares import NO_STORE, page

logger = logging.getLogger(WEB)

PASSWORD_MISMATCH = "The two passwords do not match."  # noqa: S105 - a message
USERNAME_TAKEN = "This username is taken. Choose another one."


async def register_page(request: web.Request) -> web.Response:
    """GET /register/{token}: the form for a valid invitation, else why not."""
    invitation = await _store(request).find(request.match_info["token"])
    if invitation is None or invitation.state != INVITATION_PENDING:
        return _unusable(request, invitation)
    if invitation.sub is not None:
        return await _reset_page(request, invitation)
    return await _form(request, invitation, username="", error=None)


async def register_submit(request: web.Request) -> web.Response:
    """POST /register/{token}: create the account, then mark the link used."""
    form = await parsing.form_params(request)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason="The form expired; reload the page.")

    token = request.match_info["token"]
    store = _store(request)
    invitation = await store.find(token)
    if invitation is None or invitation.state != INVITATION_PENDING:
        return _unusable(request, invitation)
    if invitation.sub is not None:
        return await _reset_submit(request, invitation, form)
    username = invitation.username or form.get("username", "")
    problem = await _check_form(request, username, form)
    if problem is not None:
        return await _form(request, invitation, username, problem, status=400)

    # Claiming before creating the account makes the link single use, because
    # of two concurrent submissions only one finds it pending. A failed account
    # creation puts it back.
    claimed = await store.claim(token)
    if claimed is None or claimed.state != INVITATION_PENDING:
        return _unusable(request, claimed)
    try:
        user = await request.app[ACCOUNTS].create_user(
            username, form.get("password", ""), _claims(claimed), claimed.groups
        )
    except (UsernameTaken, ValueError) as err:
        await store.release(claimed)
        logger.info(
            "registration failed, invitation released: invitation=%s error=%s",
            claimed.id,
            type(err).__name__,
        )
        error = USERNAME_TAKEN if isinstance(err, UsernameTaken) else str(err)
        return await _form(request, invitation, username, error, status=400)
    except BaseException:
        await store.release(claimed)
        raise

    security_event(
        "registered",
        request_id=request[REQUEST_ID],
        sub=user.sub,
        invitation=claimed.id,
        groups=",".join(user.groups) or "-",
    )
    response = aiohttp_jinja2.render_template(
        "registered.html", request, {"username": user.username}
    )
    response.headers.update(NO_STORE)
    return response


async def _check_form(
    request: web.Request, username: str, form: dict[str, str]
) -> str | None:
    """Return the first problem with the submitted form, or None."""
    try:
        normalize_username(username)
        validate_password(form.get("password", ""))
    except ValueError as err:
        return str(err)
    if form.get("password") != form.get("password_confirm"):
        return PASSWORD_MISMATCH
    if await request.app[ACCOUNTS].find(username) is not None:
        return USERNAME_TAKEN
    return None


def _claims(invitation: Invitation) -> dict[str, Any]:
    if invitation.email is None:
        return {}
    # The invitation names the address, but the user has not proven that they
    # receive mail there, so it is not verified.
    return {"email": invitation.email, "email_verified": False}


async def _form(
    request: web.Request,
    invitation: Invitation,
    username: str,
    error: str | None,
    status: int = 200,
) -> web.Response:
    reset = invitation.sub is not None
    context = {
        "csrf_token": await csrf_token(request),
        "action": request.path,
        "username": invitation.username or username,
        "username_locked": invitation.username is not None or reset,
        "reset": reset,
        "email": invitation.email,
        "admin": invitation.admin,
        "error": error,
    }
    response = aiohttp_jinja2.render_template(
        "register.html", request, context, status=status
    )
    response.headers.update(NO_STORE)
    return response


def _unusable(request: web.Request, invitation: Invitation | None) -> web.Response:
    """Explain why a link is unusable: 404 unknown or expired, 410 used or revoked."""
    state = "unknown" if invitation is None else invitation.state
    logger.info("invitation link rejected: state=%s", state)
    if invitation is None:
        return page(
            request,
            404,
            "Invitation not found",
            "This invitation link is unknown or has expired."
            " Ask the person who sent it for a new one.",
        )
    if invitation.state == USED:
        message = "This invitation link has been used already. Each link works once."
    else:
        message = "This invitation link has been revoked."
    return page(
        request,
        410,
        "Invitation no longer valid",
        message + " Ask the person who sent it for a new one.",
    )


def _store(request: web.Request) -> InvitationStore:
    return InvitationStore(request.app[REDIS])


# -- links bound to an existing user: set a new password for that user --


async def _reset_page(request: web.Request, invitation: Invitation) -> web.Response:
    """Render the password form of a credential reset link, showing the username."""
    user = await request.app[ACCOUNTS].get(invitation.sub or "")
    if user is None:
        return _user_gone(request, invitation)
    return await _form(request, invitation, user.username, error=None)


async def _reset_submit(
    request: web.Request, invitation: Invitation, form: dict[str, str]
) -> web.Response:
    """Set the bound user's password, then mark the link used."""
    accounts = request.app[ACCOUNTS]
    user = await accounts.get(invitation.sub or "")
    if user is None:
        return _user_gone(request, invitation)
    password = form.get("password", "")
    problem = _check_password(password, form.get("password_confirm"))
    if problem is not None:
        return await _form(request, invitation, user.username, problem, status=400)

    store = _store(request)
    claimed = await store.claim(request.match_info["token"])
    if claimed is None or claimed.state != INVITATION_PENDING:
        return _unusable(request, claimed)
    try:
        user = await accounts.set_password(user.sub, password)
    except UserNotFound:
        return _user_gone(request, invitation)
    except BaseException:
        await store.release(claimed)
        raise

    security_event(
        "credentials_reset_redeemed",
        request_id=request[REQUEST_ID],
        sub=user.sub,
        invitation=claimed.id,
    )
    response = aiohttp_jinja2.render_template(
        "registered.html", request, {"username": user.username, "reset": True}
    )
    response.headers.update(NO_STORE)
    return response


def _check_password(password: str, confirmation: str | None) -> str | None:
    try:
        validate_password(password)
    except ValueError as err:
        return str(err)
    if password != confirmation:
        return PASSWORD_MISMATCH
    return None


def _user_gone(request: web.Request, invitation: Invitation) -> web.Response:
    logger.info("reset link rejected: user removed, invitation=%s", invitation.id)
    return page(
        request,
        410,
        "Invitation no longer valid",
        "The account this link was made for no longer exists.",
    )


# Used by the passkey enrolment in web/passkeys.py.
render_form = _form
unusable = _unusable
invitation_claims = _claims
