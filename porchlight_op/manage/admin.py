"""The administration pages: access control, shared helpers and the overview.

Every page under /manage/admin needs a live management login of a user in
the admin group. A signed-out browser goes through the management sign-in,
any other user gets a 403 page, and every POST needs the session's CSRF token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..log import WEB, security_event
from ..models import ADMIN_GROUP, User
from ..web.keys import ACCOUNTS, REQUEST_ID
from ..web.login_session import check_csrf, csrf_token
from ..web.middlewares import page
from ..web.params import posted_form
from .pages import _field, _render, _signed_in_user

logger = logging.getLogger(WEB)

ADMIN_PATH = "/manage/admin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AdminHandler = Callable[[web.Request, User], Awaitable[web.StreamResponse]]


class PageError(Exception):
    """Raised by an administration handler to respond with an error page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def admin_only(handler: AdminHandler) -> Handler:
    """Wrap a handler so that it runs only for a signed-in administrator.

    A POST also needs a valid CSRF token. The handler gets the administrator
    and may raise PageError to respond with an error page.
    """

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        admin = await _signed_in_user(request)
        if ADMIN_GROUP not in admin.groups:
            security_event(
                "admin_access_denied",
                request_id=request[REQUEST_ID],
                sub=admin.sub,
                path=request.path,
            )
            return page(
                request,
                403,
                "Access denied",
                "The administration pages are for members of the admin group.",
            )
        if request.method == "POST":
            form = await posted_form(request)
            if not await check_csrf(request, _field(form, "csrf_token")):
                logger.info(
                    "admin form rejected: invalid CSRF token, sub=%s", admin.sub
                )
                return page(
                    request, 403, "Form expired", "Reload the page and try again."
                )
        try:
            return await handler(request, admin)
        except PageError as error:
            return page(request, error.status, error.title, error.message)

    return checked


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render an administration page with a CSRF token and Cache-Control no-store."""
    full = {"csrf_token": await csrf_token(request), **context}
    return _render(request, template, full, status)


def audit(request: web.Request, admin: User, action: str, **ids: object) -> None:
    """Log an administrator's change as a security event; pass ids, never secrets."""
    security_event(
        f"admin_{action}", request_id=request[REQUEST_ID], admin=admin.sub, **ids
    )


def field(form: Any, name: str) -> str:
    """Return a form field's text without surrounding whitespace, or ""."""
    return (_field(form, name) or "").strip()


def confirmed(form: Any) -> bool:
    """Tell whether the form's confirmation checkbox is ticked."""
    return _field(form, "confirm") == "yes"


def not_confirmed(request: web.Request) -> web.Response:
    """Render the page for a destructive action submitted without confirmation."""
    return page(
        request,
        400,
        "Not confirmed",
        "Tick the confirmation box to go ahead. Nothing was changed.",
    )


async def confirm_page(
    request: web.Request,
    title: str,
    message: str,
    action: str,
    button: str,
    hidden: dict[str, str] | None = None,
    ask_expiry: bool = False,
) -> web.Response:
    """Render the confirmation step of a destructive action."""
    context = {
        "title": title,
        "message": message,
        "action": action,
        "button": button,
        "hidden": hidden or {},
        "ask_expiry": ask_expiry,
    }
    return await render(request, "manage_admin_confirm.html", context)


@admin_only
async def overview(request: web.Request, admin: User) -> web.StreamResponse:
    """Show the administration sections and how many users there are."""
    users = await request.app[ACCOUNTS].list()
    context = {
        "user_count": len(users),
        "admin_count": sum(1 for user in users if ADMIN_GROUP in user.groups),
    }
    return await render(request, "manage_admin.html", context)


def setup_admin_routes(router: web.UrlDispatcher) -> None:
    """Register the administration pages."""
    from . import admin_clients, admin_invitations, admin_users

    router.add_get(ADMIN_PATH, overview)
    admin_users.setup_routes(router)
    admin_clients.setup_routes(router)
    admin_invitations.setup_routes(router)
