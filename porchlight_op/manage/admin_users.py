"""Administration of users: list, search, create, edit, disable, delete, reset."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from ..accounts.service import UsernameTaken, UserNotFound
from ..log import WEB
from ..models import ADMIN_GROUP, InvalidClaim, User
from ..store.invitations import (
    PENDING,
    InvalidDuration,
    InvitationStore,
    parse_duration,
    register_url,
)
from ..web.keys import ACCOUNTS, PASSKEYS, REDIS, SETTINGS, USER_SESSIONS
from ..web.middlewares import page
from .admin import (
    ADMIN_PATH,
    admin_only,
    audit,
    confirm_page,
    confirmed,
    field,
    not_confirmed,
    render,
)
from .pages import PROFILE_CLAIMS, VERIFIED_FLAGS, _field, merge_profile_form

logger = logging.getLogger(WEB)

USERS_PATH = ADMIN_PATH + "/users"
PAGE_SIZE = 50
DEFAULT_RESET_EXPIRY = "7d"
# NOTE: a rule of these pages, not of the User record. Group names are short
# lowercase words, so they read well in logs and match ADMIN_GROUP exactly.
GROUP_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_GROUPS = 20
MAX_QUERY_LENGTH = 200

LAST_ADMIN = (
    "This is the last enabled administrator. Make another user an administrator first."
)
DONE_MESSAGES = {
    "created": "The user was created.",
    "claims": "The claims were saved.",
    "groups": "The groups were saved.",
    "disabled": "The user was disabled. Their sessions and tokens were revoked.",
    "enabled": "The user was enabled.",
}


def setup_routes(router: web.UrlDispatcher) -> None:
    """Register the user administration pages."""
    router.add_get(USERS_PATH, users_list)
    router.add_get(USERS_PATH + "/new", user_new_page)
    router.add_post(USERS_PATH + "/new", user_create)
    router.add_get(USERS_PATH + "/{sub}", user_page)
    router.add_post(USERS_PATH + "/{sub}/claims", user_claims_submit)
    router.add_post(USERS_PATH + "/{sub}/groups", user_groups_submit)
    router.add_post(USERS_PATH + "/{sub}/disable", user_disable)
    router.add_post(USERS_PATH + "/{sub}/enable", user_enable)
    router.add_get(USERS_PATH + "/{sub}/delete", user_delete_page)
    router.add_post(USERS_PATH + "/{sub}/delete", user_delete)
    router.add_get(USERS_PATH + "/{sub}/reset", user_reset_page)
    router.add_post(USERS_PATH + "/{sub}/reset", user_reset)


# -- list and search --


@admin_only
async def users_list(request: web.Request, admin: User) -> web.StreamResponse:
    """List users matching the search, PAGE_SIZE per page."""
    query = request.query.get("q", "").strip()[:MAX_QUERY_LENGTH]
    users = [
        user for user in await request.app[ACCOUNTS].list() if _matches(user, query)
    ]
    page_count = max(1, -(-len(users) // PAGE_SIZE))
    number = min(_page_number(request.query.get("page", "1")), page_count)
    start = (number - 1) * PAGE_SIZE
    context = {
        "query": query,
        "users": users[start : start + PAGE_SIZE],
        "total": len(users),
        "page": number,
        "page_count": page_count,
        "admin_group": ADMIN_GROUP,
    }
    return await render(request, "manage_admin_users.html", context)


def _matches(user: User, query: str) -> bool:
    """Tell whether the query is part of the username, sub, email or name."""
    if not query:
        return True
    expected = query.casefold()
    fields = (
        user.username,
        user.sub,
        str(user.claims.get("email", "")),
        str(user.claims.get("name", "")),
    )
    return any(expected in text.casefold() for text in fields)


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1


# -- create --


@admin_only
async def user_new_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Show the form for a new user."""
    return await _render_new(request, {}, None, 200)


@admin_only
async def user_create(request: web.Request, admin: User) -> web.StreamResponse:
    """Create a user with an optional password, claims and groups."""
    form = await request.post()
    username = field(form, "username")
    # Passwords are taken as typed: the login form does not strip them either.
    password = _field(form, "password") or None
    claims, problem = admin_claims_form({}, form)
    groups: tuple[str, ...] = ()
    if problem is None:
        groups, problem = parse_groups(field(form, "groups"))
    if problem is None and password != (_field(form, "password_confirm") or None):
        problem = "The two passwords do not match."
    if problem is not None:
        return await _render_new(request, form, problem, 400)
    try:
        user = await request.app[ACCOUNTS].create_user(
            username, password, claims, groups
        )
    except UsernameTaken:
        return await _render_new(request, form, "This username is taken.", 400)
    except ValueError as error:
        return await _render_new(request, form, str(error), 400)
    audit(request, admin, "user_created", sub=user.sub, groups=_groups_text(user))
    raise web.HTTPSeeOther(f"{USERS_PATH}/{user.sub}?done=created")


async def _render_new(
    request: web.Request, form: Any, error: str | None, status: int
) -> web.Response:
    if error is not None:
        logger.info("admin user form rejected: %s", error)
    context = {
        "username": field(form, "username"),
        "groups": field(form, "groups"),
        "fields": [(name, field(form, name)) for name in PROFILE_CLAIMS],
        "verified": {flag: form.get(flag) == "yes" for flag in VERIFIED_FLAGS.values()},
        "error": error,
    }
    return await render(request, "manage_admin_user_new.html", context, status)


def admin_claims_form(current: Any, form: Any) -> tuple[dict[str, Any], str | None]:
    """Apply the profile fields and the verified checkboxes to a copy of the claims.

    Unlike the user's own profile page, an administrator may mark an email
    address or phone number as verified. Returns the claims and any problem.
    """
    claims, problem = merge_profile_form(current, form)
    for claim, flag in VERIFIED_FLAGS.items():
        if claim in claims:
            claims[flag] = form.get(flag) == "yes"
        else:
            claims.pop(flag, None)
    return claims, problem


def parse_groups(text: str) -> tuple[tuple[str, ...], str | None]:
    """Split a comma- or space-separated group list; return it and any problem."""
    names = tuple(dict.fromkeys(text.replace(",", " ").split()))
    if len(names) > MAX_GROUPS:
        return (), f"invalid groups: at most {MAX_GROUPS} allowed"
    for name in names:
        if not GROUP_PATTERN.fullmatch(name):
            return (), (
                f"invalid group {name[:70]!r}: use up to 64 lowercase letters,"
                " digits, dots, dashes and underscores"
            )
    return names, None


# -- view and edit --


@admin_only
async def user_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Show one user with the forms that change it."""
    user = await _target(request)
    done = DONE_MESSAGES.get(request.query.get("done", ""))
    return await _render_user(request, user, dict(user.claims), None, 200, done)


@admin_only
async def user_claims_submit(request: web.Request, admin: User) -> web.StreamResponse:
    """Save the profile claims of a user."""
    user = await _target(request)
    form = await request.post()
    claims, problem = admin_claims_form(user.claims, form)
    if problem is not None:
        return await _render_user(request, user, dict(user.claims), problem, 400)
    try:
        await request.app[ACCOUNTS].update_claims(user.sub, claims)
    except InvalidClaim as error:
        return await _render_user(request, user, claims, str(error), 400)
    except UserNotFound:
        raise web.HTTPNotFound() from None
    audit(request, admin, "user_claims_changed", sub=user.sub)
    raise web.HTTPSeeOther(f"{USERS_PATH}/{user.sub}?done=claims")


@admin_only
async def user_groups_submit(request: web.Request, admin: User) -> web.StreamResponse:
    """Replace the groups of a user, keeping at least one enabled administrator."""
    user = await _target(request)
    form = await request.post()
    groups, problem = parse_groups(field(form, "groups"))
    if problem is not None:
        return await _render_user(request, user, dict(user.claims), problem, 400)
    if ADMIN_GROUP not in groups and await _is_last_admin(request, user):
        return _last_admin(request, admin, user, "remove_admin_group")
    try:
        await request.app[ACCOUNTS].set_groups(user.sub, groups)
    except UserNotFound:
        raise web.HTTPNotFound() from None
    audit(request, admin, "user_groups_changed", sub=user.sub, groups=",".join(groups))
    raise web.HTTPSeeOther(f"{USERS_PATH}/{user.sub}?done=groups")


async def _render_user(
    request: web.Request,
    user: User,
    claims: dict[str, Any],
    error: str | None,
    status: int,
    done: str | None = None,
) -> web.Response:
    if error is not None:
        logger.info("admin user form rejected: %s, sub=%s", error, user.sub)
    context = {
        "user": user,
        "fields": [(name, str(claims.get(name, ""))) for name in PROFILE_CLAIMS],
        "verified": {
            flag: claims.get(flag) is True for flag in VERIFIED_FLAGS.values()
        },
        # The verified flags have their own checkboxes on the page.
        "other_claims": sorted(
            set(claims) - set(PROFILE_CLAIMS) - set(VERIFIED_FLAGS.values())
        ),
        "groups": " ".join(user.groups),
        "has_password": user.password_hash is not None,
        "error": error,
        "done": done,
    }
    return await render(request, "manage_admin_user.html", context, status)


# -- disable, enable, delete --


@admin_only
async def user_disable(request: web.Request, admin: User) -> web.StreamResponse:
    """Disable a user, which also revokes their sessions and tokens."""
    user = await _target(request)
    if not confirmed(await request.post()):
        return not_confirmed(request)
    if await _is_last_admin(request, user):
        return _last_admin(request, admin, user, "disable")
    await request.app[ACCOUNTS].set_disabled(user.sub, True)
    audit(request, admin, "user_disabled", sub=user.sub)
    raise web.HTTPSeeOther(f"{USERS_PATH}/{user.sub}?done=disabled")


@admin_only
async def user_enable(request: web.Request, admin: User) -> web.StreamResponse:
    """Enable a disabled user again."""
    user = await _target(request)
    await request.app[ACCOUNTS].set_disabled(user.sub, False)
    audit(request, admin, "user_enabled", sub=user.sub)
    raise web.HTTPSeeOther(f"{USERS_PATH}/{user.sub}?done=enabled")


@admin_only
async def user_delete_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Ask for confirmation before deleting a user."""
    user = await _target(request)
    return await confirm_page(
        request,
        "Delete user",
        f"Delete the user {user.username} ({user.sub})? Their account, sessions"
        " and tokens are removed for good.",
        f"{USERS_PATH}/{user.sub}/delete",
        "Delete user",
    )


@admin_only
async def user_delete(request: web.Request, admin: User) -> web.StreamResponse:
    """Delete a user after confirmation, never the last enabled administrator."""
    user = await _target(request)
    if not confirmed(await request.post()):
        return not_confirmed(request)
    if await _is_last_admin(request, user):
        return _last_admin(request, admin, user, "delete")
    await request.app[ACCOUNTS].remove(user.sub)
    audit(request, admin, "user_deleted", sub=user.sub)
    return page(request, 200, "User deleted", f"The user {user.username} was deleted.")


async def _is_last_admin(request: web.Request, user: User) -> bool:
    """Tell whether no other enabled administrator would remain without this user.

    NOTE: two administrators demoting each other at the same moment can both
    pass this check, because it reads the user list without a lock.
    """
    if ADMIN_GROUP not in user.groups or user.disabled:
        return False
    for other in await request.app[ACCOUNTS].list():
        if other.sub != user.sub and ADMIN_GROUP in other.groups and not other.disabled:
            return False
    return True


def _last_admin(
    request: web.Request, admin: User, user: User, action: str
) -> web.Response:
    audit(request, admin, "last_admin_kept", sub=user.sub, refused=action)
    return page(request, 409, "Not allowed", LAST_ADMIN)


# -- credential reset --


@admin_only
async def user_reset_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Ask for confirmation before resetting a user's credentials."""
    user = await _target(request)
    return await confirm_page(
        request,
        "Reset credentials",
        f"Remove the password and passkeys of {user.username} ({user.sub}) and"
        " create a one-time link with which they set up a passkey or a new"
        " password? Their sessions and tokens end at once.",
        f"{USERS_PATH}/{user.sub}/reset",
        "Reset credentials",
        ask_expiry=True,
    )


@admin_only
async def user_reset(request: web.Request, admin: User) -> web.StreamResponse:
    """Remove the user's credentials and show a one-time enrolment link once."""
    user = await _target(request)
    form = await request.post()
    if not confirmed(form):
        return not_confirmed(request)
    try:
        lifetime = parse_duration(field(form, "expires") or DEFAULT_RESET_EXPIRY)
    except InvalidDuration as error:
        return page(request, 400, "Invalid expiry", str(error))
    try:
        await request.app[ACCOUNTS].set_password(user.sub, None)
    except UserNotFound:
        raise web.HTTPNotFound() from None
    removed = await _remove_passkeys(request, user.sub)
    # A reset usually follows a lost or stolen credential, so the sessions
    # and tokens obtained with the old one end too.
    await request.app[USER_SESSIONS].revoke_everything(user.sub)
    # An earlier link may have gone astray, which is one reason to reset again.
    earlier = await _revoke_reset_links(request, user.sub)
    token, invitation = await InvitationStore(request.app[REDIS]).create(
        lifetime, sub=user.sub
    )
    audit(
        request,
        admin,
        "credentials_reset",
        sub=user.sub,
        invitation=invitation.id,
        passkeys_removed=removed,
        earlier_links_revoked=earlier,
    )
    context = {
        "title": "Credentials reset",
        "message": f"The password of {user.username} was removed. Send them this"
        " link to set a new one. It works once and is shown only now.",
        "label": "Enrolment link",
        "value": register_url(request.app[SETTINGS].issuer, token),
        "back": f"{USERS_PATH}/{user.sub}",
    }
    return await render(request, "manage_admin_secret.html", context)


async def _revoke_reset_links(request: web.Request, sub: str) -> int:
    """Revoke the user's pending reset links; return how many there were."""
    store = InvitationStore(request.app[REDIS])
    revoked = 0
    for invitation in await store.list():
        if invitation.sub == sub and invitation.state == PENDING:
            await store.revoke(invitation.digest)
            revoked += 1
    return revoked


async def _remove_passkeys(request: web.Request, sub: str) -> int:
    """Remove every passkey of the user and return how many there were."""
    return await request.app[PASSKEYS].remove_all(sub)


# -- helpers --


async def _target(request: web.Request) -> User:
    """Return the user named in the path, or raise a 404 page."""
    user = await request.app[ACCOUNTS].get(request.match_info["sub"])
    if user is None:
        raise web.HTTPNotFound()
    return user


def _groups_text(user: User) -> str:
    return ",".join(user.groups) or "-"
