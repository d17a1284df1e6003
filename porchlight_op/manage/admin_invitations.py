"""Administration of invitations: create a one-time link, list and revoke."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..log import WEB
from ..models import User
from ..store.invitations import (
    PENDING,
    AmbiguousId,
    InvalidDuration,
    InvitationStore,
    parse_duration,
    register_url,
    validate_email,
)
from ..web.keys import REDIS, SETTINGS
from ..web.middlewares import page
from .admin import (
    ADMIN_PATH,
    admin_only,
    audit,
    confirmed,
    field,
    not_confirmed,
    render,
)

logger = logging.getLogger(WEB)

INVITATIONS_PATH = ADMIN_PATH + "/invitations"
DEFAULT_EXPIRY = "7d"


def setup_routes(router: web.UrlDispatcher) -> None:
    """Register the invitation administration pages."""
    router.add_get(INVITATIONS_PATH, invitations_list)
    router.add_post(INVITATIONS_PATH, invitation_create)
    router.add_post(INVITATIONS_PATH + "/revoke", invitation_revoke)


@admin_only
async def invitations_list(request: web.Request, admin: User) -> web.StreamResponse:
    """List unexpired invitations, never their tokens, and the form for a new one."""
    return await _render_list(request, None, 200, expires=DEFAULT_EXPIRY)


@admin_only
async def invitation_create(request: web.Request, admin: User) -> web.StreamResponse:
    """Create an invitation and show its link once."""
    form = await request.post()
    email = field(form, "email") or None
    admin_flag = form.get("admin") == "yes"
    expires = field(form, "expires") or DEFAULT_EXPIRY
    try:
        lifetime = parse_duration(expires)
        if email is not None:
            validate_email(email)
    except (InvalidDuration, ValueError) as error:
        return await _render_list(
            request, str(error), 400, email=email or "", expires=expires
        )
    token, invitation = await _store(request).create(lifetime, email, admin_flag)
    audit(
        request,
        admin,
        "invitation_created",
        invitation=invitation.id,
        admin_flag=admin_flag,
    )
    context = {
        "title": "Invitation created",
        "message": "Send this link to the person you invite. It works once, until"
        " the expiry time, and is shown only now.",
        "label": "Invitation link",
        "value": register_url(request.app[SETTINGS].issuer, token),
        "back": INVITATIONS_PATH,
    }
    return await render(request, "manage_admin_secret.html", context)


@admin_only
async def invitation_revoke(request: web.Request, admin: User) -> web.StreamResponse:
    """Revoke a pending invitation after confirmation."""
    form = await request.post()
    if not confirmed(form):
        return not_confirmed(request)
    invitation_id = field(form, "id")
    try:
        before = await _store(request).revoke(invitation_id) if invitation_id else None
    except AmbiguousId as error:
        return page(request, 400, "Invitation not found", str(error))
    if before is None:
        return page(
            request,
            404,
            "Invitation not found",
            "No unexpired invitation has this id.",
        )
    if before.state != PENDING:
        return page(
            request,
            409,
            "Invitation no longer valid",
            f"The invitation {before.id} is {before.state} already.",
        )
    audit(request, admin, "invitation_revoked", invitation=before.id)
    raise web.HTTPSeeOther(INVITATIONS_PATH)


async def _render_list(
    request: web.Request, error: str | None, status: int, **values: Any
) -> web.Response:
    if error is not None:
        logger.info("admin invitation form rejected: %s", error)
    rows = [(item, _utc(item.expires_at)) for item in await _store(request).list()]
    context = {
        "invitations": rows,
        "values": values,
        "error": error,
    }
    return await render(request, "manage_admin_invitations.html", context, status)


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _store(request: web.Request) -> InvitationStore:
    return InvitationStore(request.app[REDIS])
