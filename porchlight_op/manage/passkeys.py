"""Passkeys and password removal on the management area's sign-in methods page.

Removing the last sign-in method (the only passkey of a user without a
password, or the password of a user without passkeys) is refused.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..accounts.passkeys import ADD, PasskeyRejected, clean_name
from ..log import WEB, security_event
from ..models import User
from ..store.passkeys import CredentialTaken
from ..store.users import UserStore
from ..web.keys import ACCOUNTS, PASSKEYS, REDIS, REQUEST_ID, WEBAUTHN
from ..web.login_session import check_csrf
from ..web.params import posted_form
from ..web.passkeys import json_error, json_reply, parse_credential, read_json
from . import login, pages

logger = logging.getLogger(WEB)

PASSKEYS_PATH = "/manage/credentials/passkeys"
LAST_PASSKEY = (
    "This is your only way to sign in. Set a password or add another passkey"
    " before you remove it."
)
NO_PASSKEY_LEFT = (
    "The password is your only way to sign in. Add a passkey before you remove it."
)
OTHER_ACCOUNT = "This passkey request belongs to another account. Reload the page."
SESSION_ENDED = "Your session has ended. Reload the page to sign in again."


def setup_manage_passkey_routes(router: web.UrlDispatcher) -> None:
    """Register the passkey and password removal routes of /manage/credentials."""
    router.add_post(PASSKEYS_PATH + "/options", add_options)
    router.add_post(PASSKEYS_PATH, add_submit)
    router.add_post(PASSKEYS_PATH + "/rename", rename_submit)
    router.add_post(PASSKEYS_PATH + "/remove", remove_submit)
    router.add_post("/manage/credentials/password/remove", remove_password_submit)


async def add_options(request: web.Request) -> web.Response:
    """POST .../passkeys/options: registration options for the signed-in user."""
    user = await _user_or_none(request)
    if user is None:
        return json_error(SESSION_ENDED, 401)
    if await read_json(request) is None:
        return json_error("The form expired; reload the page.", 403)
    ceremony_id, options = await request.app[WEBAUTHN].registration_options(
        ADD, user.sub, user.username
    )
    return json_reply({"ceremony": ceremony_id, "publicKey": options})


async def add_submit(request: web.Request) -> web.Response:
    """POST .../passkeys: verify the new passkey and store it for the user."""
    user, form = await _checked_form(request)
    ceremonies = request.app[WEBAUTHN]
    try:
        ceremony = await ceremonies.take(_text(form, "ceremony"), ADD)
        if ceremony.sub != user.sub:
            raise PasskeyRejected(OTHER_ACCOUNT, "ceremony of another user")
        credential = parse_credential(_text(form, "credential"))
        passkey = ceremonies.verify_registration(
            ceremony, credential, _text(form, "name")
        )
        await request.app[PASSKEYS].add(user.sub, passkey)
    except PasskeyRejected as rejected:
        logger.info("passkey rejected: %s, sub=%s", rejected.reason, user.sub)
        return await pages._render_credentials(request, user, str(rejected), 400)
    except CredentialTaken:
        logger.info("passkey rejected: registered already, sub=%s", user.sub)
        error = "This passkey is registered already."
        return await pages._render_credentials(request, user, error, 400)
    security_event("passkey_added", request_id=request[REQUEST_ID], sub=user.sub)
    return await _done(request, user, "The passkey was added.")


async def rename_submit(request: web.Request) -> web.Response:
    """POST .../passkeys/rename: give one of the user's passkeys a new name."""
    user, form = await _checked_form(request)
    name = clean_name(_text(form, "name"))
    if not name:
        error = "Enter a name for the passkey."
        return await pages._render_credentials(request, user, error, 400)
    renamed = await request.app[PASSKEYS].rename(
        user.sub, _text(form, "credential_id"), name
    )
    if renamed is None:
        return await _not_found(request, user)
    return await _done(request, user, "The passkey was renamed.")


async def remove_submit(request: web.Request) -> web.Response:
    """POST .../passkeys/remove: delete a passkey unless it is the last method."""
    user, form = await _checked_form(request)
    removed = await request.app[PASSKEYS].remove_unless_last(
        user.sub, _text(form, "credential_id")
    )
    if removed is None:
        logger.info("passkey removal rejected: last sign-in method, sub=%s", user.sub)
        return await pages._render_credentials(request, user, LAST_PASSKEY, 409)
    if not removed:
        return await _not_found(request, user)
    security_event("passkey_removed", request_id=request[REQUEST_ID], sub=user.sub)
    return await _done(request, user, "The passkey was removed.")


async def remove_password_submit(request: web.Request) -> web.Response:
    """POST /manage/credentials/password/remove: delete the password."""
    user, form = await _checked_form(request)
    if user.password_hash is None:
        return await _done(request, user, "No password is set for your account.")
    if not await request.app[PASSKEYS].list(user.sub):
        logger.info("password removal rejected: last sign-in method, sub=%s", user.sub)
        return await pages._render_credentials(request, user, NO_PASSKEY_LEFT, 409)
    accounts = request.app[ACCOUNTS]
    current = _text(form, "current_password")
    problem = await pages.check_current_password(request, user, current)
    if problem is not None:
        logger.info("password removal rejected: %s, sub=%s", problem, user.sub)
        return await pages._render_credentials(request, user, problem, 400)
    previous_hash = user.password_hash
    user = await accounts.set_password(user.sub, None)
    if not await request.app[PASSKEYS].list(user.sub):
        # A concurrent request removed the last passkey after the check above,
        # so the password stays. NOTE: no test reaches this race.
        store = UserStore(request.app[REDIS])
        user = await store.set_password_hash(user.sub, previous_hash) or user
        logger.info("password removal undone: last passkey removed, sub=%s", user.sub)
        return await pages._render_credentials(request, user, NO_PASSKEY_LEFT, 409)
    return await _done(request, user, "Your password was removed.")


async def _user_or_none(request: web.Request) -> User | None:
    sub = await login.management_sub(request)
    user = None if sub is None else await request.app[ACCOUNTS].get(sub)
    return None if user is None or user.disabled else user


async def _checked_form(request: web.Request) -> tuple[User, dict[str, str]]:
    """Return the signed-in user and the posted form, or end the request."""
    user = await _user_or_none(request)
    if user is None:
        await login.start(request, login.HOME_PATH)
    posted = await posted_form(request)
    form = {key: value for key, value in posted.items() if isinstance(value, str)}
    if not await check_csrf(request, form.get("csrf_token")):
        logger.info("management form rejected: invalid CSRF token, sub=%s", user.sub)
        raise web.HTTPForbidden(reason="Form expired")
    return user, form


async def _not_found(request: web.Request, user: User) -> web.Response:
    error = "That passkey was not found. It may have been removed already."
    return await pages._render_credentials(request, user, error, 404)


async def _done(request: web.Request, user: User, notice: str) -> web.Response:
    return await pages._render_credentials(request, user, None, 200, notice=notice)


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "")
