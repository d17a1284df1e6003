"""Passkey login on the login page and passkey enrolment through an invitation.

The page script (templates/static/passkeys.js) requests the ceremony options
from a JSON endpoint, runs navigator.credentials, and then posts the response
in an ordinary form, so the result page is a normal navigation. Every endpoint
checks the session's CSRF token: forms in the csrf_token field, JSON requests
in the X-CSRF-Token header.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..accounts import proquint
from ..accounts.passkeys import ENROL, LOGIN, PasskeyRejected
from ..accounts.service import UsernameTaken
from ..accounts.throttle import lock_message
from ..log import WEB, security_event
from ..models import User, normalize_username
from ..store import keys
from ..store.invitations import PENDING as INVITATION_PENDING
from ..store.invitations import Invitation, InvitationStore, token_digest
from ..store.passkeys import CredentialTaken, Passkey
from . import params as parsing
from . import register
from .authorize import complete_login, login_again
from .keys import ACCOUNTS, PASSKEYS, REDIS, REQUEST_ID, THROTTLE, WEBAUTHN
from .login_session import check_csrf
from .middlewares import NO_STORE, json_response

logger = logging.getLogger(WEB)

CSRF_HEADER = "X-CSRF-Token"
FORM_EXPIRED = "The form expired; reload the page."
ACCOUNT_UNUSABLE = "This passkey cannot be used to sign in."
UNUSABLE_LINK = "This invitation link is no longer valid. Reload the page."
CREATION_FAILED = "The account could not be created. Try again."
TOO_MANY_CHALLENGES = "Too many passkey attempts from here. Try again in a minute."
# NOTE: our limits, not a standard's: challenges per client address per window
# of seconds. A page requests one per view, and conditional UI one per attempt.
CHALLENGE_RATE_LIMIT = 120
CHALLENGE_RATE_WINDOW = 60


def setup_passkey_routes(router: web.UrlDispatcher) -> None:
    """Register the passkey login and invitation enrolment routes."""
    router.add_post("/login/passkey/options", login_options)
    router.add_post("/login/passkey", login_submit)
    router.add_post("/register/{token}/passkey/options", enrol_options)
    router.add_post("/register/{token}/passkey", enrol_submit)


# -- helpers shared with the management pages --


async def read_json(request: web.Request) -> dict[str, Any] | None:
    """Return a JSON request's object after its CSRF header checks out, else None."""
    if not await check_csrf(request, request.headers.get(CSRF_HEADER)):
        return None
    if request.content_type != "application/json":
        return None
    try:
        body = await request.json()
    except (ValueError, RecursionError, LookupError):
        # RecursionError: nesting too deep. LookupError: an unknown charset.
        return None
    return body if isinstance(body, dict) else None


def json_reply(data: dict[str, Any], status: int = 200) -> web.Response:
    """Return a JSON response that no cache keeps."""
    return json_response(data, status=status, headers=NO_STORE)


def json_error(message: str, status: int) -> web.Response:
    """Return a JSON error with a message for the page to show."""
    return json_reply({"error": message}, status)


def parse_credential(raw: str | None) -> dict[str, Any]:
    """Parse the credential JSON posted by the page, or raise PasskeyRejected."""
    try:
        credential = json.loads(raw or "")
    except (ValueError, RecursionError):  # RecursionError: nesting too deep
        credential = None
    if not isinstance(credential, dict):
        raise PasskeyRejected("The passkey response is missing.", "no credential")
    return credential


# -- login --


async def challenge_allowed(request: web.Request) -> bool:
    """Count a challenge for the client address; False once over the rate.

    Each challenge is a Redis key for minutes, so an unbounded stream of them
    from one address would fill memory.
    """
    key = keys.webauthn_challenge_count(request.remote or "unknown")
    async with request.app[REDIS].pipeline(transaction=False) as pipe:
        # SET NX starts the window with its expiry; INCR keeps that expiry.
        pipe.set(key, 0, ex=CHALLENGE_RATE_WINDOW, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
    if int(count) > CHALLENGE_RATE_LIMIT:
        logger.info(
            "passkey challenge rejected: rate limit exceeded, remote=%s", request.remote
        )
        return False
    return True


async def login_options(request: web.Request) -> web.Response:
    """POST /login/passkey/options: a challenge for a usernameless login."""
    if await read_json(request) is None:
        return json_error(FORM_EXPIRED, 403)
    if not await challenge_allowed(request):
        return json_error(TOO_MANY_CHALLENGES, 429)
    ceremony_id, options = await request.app[WEBAUTHN].login_options()
    return json_reply({"ceremony": ceremony_id, "publicKey": options})


async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login/passkey: verify the assertion and finish like a password login."""
    form = await parsing.form_params(request)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason=FORM_EXPIRED)
    request_id = form.get("request", "")
    address = request.remote or "unknown"
    throttle = request.app[THROTTLE]
    locked_for = await throttle.address_locked_for(address)
    if locked_for:
        security_event(
            "login_throttled", request_id=request[REQUEST_ID], remote=address
        )
        return await login_again(
            request, request_id, "", lock_message(locked_for), status=429
        )

    try:
        sub, user_verified = await _verify_login(request, form)
    except PasskeyRejected as rejected:
        security_event(
            "login_failed",
            request_id=request[REQUEST_ID],
            remote=request.remote,
            method="passkey",
            reason=rejected.reason.replace(" ", "_"),
        )
        locked_for = await throttle.address_failed(address)
        error = lock_message(locked_for) if locked_for else str(rejected)
        return await login_again(request, request_id, "", error, status=400)

    amr = ("hwk", "user") if user_verified else ("hwk",)
    return await complete_login(request, request_id, sub, amr)


async def _verify_login(request: web.Request, form: dict[str, str]) -> tuple[str, bool]:
    ceremonies = request.app[WEBAUTHN]
    ceremony = await ceremonies.take(form.get("ceremony", ""), LOGIN)
    credential = parse_credential(form.get("credential"))
    assertion = await ceremonies.verify_login(ceremony, credential)
    user = await request.app[ACCOUNTS].get(assertion.sub)
    if user is None or user.disabled:
        raise PasskeyRejected(ACCOUNT_UNUSABLE, "user disabled or removed")
    return assertion.sub, assertion.user_verified


# -- enrolment through an invitation --


async def enrol_options(request: web.Request) -> web.Response:
    """POST /register/{token}/passkey/options: a challenge for a new account."""
    body = await read_json(request)
    if body is None:
        return json_error(FORM_EXPIRED, 403)
    if not await challenge_allowed(request):
        return json_error(TOO_MANY_CHALLENGES, 429)
    token = request.match_info["token"]
    invitation = await InvitationStore(request.app[REDIS]).find(token)
    if invitation is None or invitation.state != INVITATION_PENDING:
        return json_error(UNUSABLE_LINK, 410)
    if invitation.sub is not None:
        # A credential reset link: the passkey is for that existing user.
        user = await request.app[ACCOUNTS].get(invitation.sub)
        if user is None:
            return json_error(UNUSABLE_LINK, 410)
        sub, username = user.sub, user.username
    else:
        username = invitation.username or str(body.get("username", ""))
        problem = await _username_problem(request, username)
        if problem is not None:
            return json_error(problem, 400)
        # The account's sub is chosen now, because the passkey's user handle
        # carries it. The account is created only when the passkey verifies.
        sub = proquint.new_id()
    data = {"invitation": token_digest(token), "username": username}
    ceremony_id, options = await request.app[WEBAUTHN].registration_options(
        ENROL, sub, username, data
    )
    return json_reply({"ceremony": ceremony_id, "publicKey": options})


async def enrol_submit(request: web.Request) -> web.Response:
    """POST /register/{token}/passkey: create the account with the new passkey."""
    form = await parsing.form_params(request)
    if not await check_csrf(request, form.get("csrf_token")):
        raise web.HTTPForbidden(reason=FORM_EXPIRED)
    token = request.match_info["token"]
    invitation = await InvitationStore(request.app[REDIS]).find(token)
    if invitation is None or invitation.state != INVITATION_PENDING:
        return register.unusable(request, invitation)

    ceremonies = request.app[WEBAUTHN]
    try:
        ceremony = await ceremonies.take(form.get("ceremony", ""), ENROL)
        if ceremony.data.get("invitation") != token_digest(token) or not ceremony.sub:
            raise PasskeyRejected("The passkey request expired.", "other invitation")
        credential = parse_credential(form.get("credential"))
        passkey = ceremonies.verify_registration(ceremony, credential, "")
    except PasskeyRejected as rejected:
        logger.info("passkey enrolment rejected: %s", rejected.reason)
        username = form.get("username", "")
        return await register.render_form(
            request, invitation, username, str(rejected), status=400
        )

    username = ceremony.data.get("username", "")
    store = InvitationStore(request.app[REDIS])
    claimed = await store.claim(token)
    if claimed is None or claimed.state != INVITATION_PENDING:
        return register.unusable(request, claimed)
    if claimed.sub is not None:
        return await _reset_with_passkey(request, claimed, ceremony.sub, passkey)
    user = None
    try:
        user = await _create_user(request, claimed, username, ceremony.sub)
        if user.sub != ceremony.sub:
            # UserStore picked another sub because this one was in use, but
            # the passkey's user handle carries the one chosen before.
            raise ValueError(CREATION_FAILED)
        await request.app[PASSKEYS].add(user.sub, passkey)
    except (UsernameTaken, ValueError, CredentialTaken) as error:
        if user is not None:
            await request.app[ACCOUNTS].remove(user.sub)
        await store.release(claimed)
        logger.info(
            "registration failed, invitation released: invitation=%s error=%s",
            claimed.id,
            type(error).__name__,
        )
        return await register.render_form(
            request, invitation, username, _enrol_error(error), status=400
        )
    except BaseException:
        await store.release(claimed)
        raise

    security_event(
        "registered",
        request_id=request[REQUEST_ID],
        sub=user.sub,
        invitation=claimed.id,
        groups=",".join(user.groups) or "-",
        method="passkey",
    )
    response = aiohttp_jinja2.render_template(
        "registered.html", request, {"username": user.username}
    )
    response.headers.update(NO_STORE)
    return response


async def _reset_with_passkey(
    request: web.Request, claimed: Invitation, sub: str, passkey: Passkey
) -> web.Response:
    """Store the passkey for the user a reset link names; the link is claimed."""
    store = InvitationStore(request.app[REDIS])
    user = await request.app[ACCOUNTS].get(sub)
    if user is None or sub != claimed.sub:
        return register.unusable(request, claimed)
    try:
        await request.app[PASSKEYS].add(sub, passkey)
    except CredentialTaken as error:
        await store.release(claimed)
        logger.info("reset enrolment failed, invitation released: %s", claimed.id)
        return await register.render_form(
            request, claimed, user.username, _enrol_error(error), status=400
        )
    except BaseException:
        await store.release(claimed)
        raise
    security_event(
        "credentials_reset_redeemed",
        request_id=request[REQUEST_ID],
        sub=sub,
        invitation=claimed.id,
        method="passkey",
    )
    response = aiohttp_jinja2.render_template(
        "registered.html", request, {"username": user.username, "reset": True}
    )
    response.headers.update(NO_STORE)
    return response


async def _create_user(
    request: web.Request, invitation: Invitation, username: str, sub: str
) -> User:
    """Create the invited user without a password, under the passkey's sub."""
    return await request.app[ACCOUNTS].create_user(
        username,
        None,
        register.invitation_claims(invitation),
        invitation.groups,
        sub=sub,
    )


async def _username_problem(request: web.Request, username: str) -> str | None:
    try:
        normalize_username(username)
    except ValueError as error:
        return str(error)
    if await request.app[ACCOUNTS].find(username) is not None:
        return register.USERNAME_TAKEN
    return None


def _enrol_error(error: Exception) -> str:
    if isinstance(error, UsernameTaken):
        return register.USERNAME_TAKEN
    if isinstance(error, CredentialTaken):
        return "This passkey is registered already."
    return str(error)


def describe_passkeys(passkeys: list[Passkey]) -> list[dict[str, str]]:
    """Return the passkeys as rows for a page: id, name and dates in UTC."""
    return [
        {
            "id": passkey.credential_id,
            "name": passkey.name,
            "created": _date(passkey.created_at),
            "last_used": _date(passkey.last_used_at) if passkey.last_used_at else "",
        }
        for passkey in passkeys
    ]


def _date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))
