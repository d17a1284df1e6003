"""The route table."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..manage.admin import setup_admin_routes
from ..manage.pages import setup_manage_routes
from ..manage.passkeys import setup_manage_passkey_routes
from . import api, authorize, consent, logout, pages, register, token_management
from .passkeys import setup_passkey_routes


def setup_routes(app: web.Application, static_dir: Path) -> None:
    """Register every route of the OP."""
    app.router.add_get("/", pages.index)
    app.router.add_get("/.well-known/openid-configuration", api.discovery)
    app.router.add_get("/jwks", api.jwks)
    app.router.add_route("GET", "/authorization", authorize.authorization)
    app.router.add_route("POST", "/authorization", authorize.authorization)
    app.router.add_get("/login", authorize.login_page)
    app.router.add_post("/login", authorize.login_submit)
    app.router.add_get("/consent", consent.consent_page)
    app.router.add_post("/consent", consent.consent_submit)
    app.router.add_post("/token", api.token)
    app.router.add_route("GET", "/userinfo", api.userinfo)
    app.router.add_route("POST", "/userinfo", api.userinfo)
    app.router.add_route("GET", "/logout", logout.logout)
    app.router.add_route("POST", "/logout", logout.logout)
    app.router.add_post("/logout/confirm", logout.confirm)
    app.router.add_post("/revoke", token_management.revoke)
    app.router.add_post("/introspect", token_management.introspect)
    app.router.add_get("/register/{token}", register.register_page)
    app.router.add_post("/register/{token}", register.register_submit)
    app.router.add_get("/health/live", api.live)
    app.router.add_get("/health/ready", api.ready)
    setup_manage_routes(app.router)
    setup_passkey_routes(app.router)
    setup_manage_passkey_routes(app.router)
    setup_admin_routes(app.router)
    app.router.add_static("/static/", static_dir)
