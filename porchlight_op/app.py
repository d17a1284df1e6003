"""The composition root: build the aiohttp application and run it."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from .accounts.passkeys import PasskeyCeremonies
from .accounts.service import Accounts
from .accounts.throttle import LoginThrottle
from .log import APP
from .manage.client import management_context
from .oidc.claims import ClaimsCache, user_claims
from .oidc.config import build_server
from .oidc.keyring import KeyringFollower, following
from .oidc.provider import Provider
from .oidc.secrets import load_server_secrets, new_signing_jwks
from .oidc.state import StateRunner
from .oidc.user_sessions import UserSessions
from .settings import Settings
from .store import keys
from .store.clients import ClientStore, client_from_settings
from .store.connection import RedisClient
from .store.consent import ConsentStore
from .store.keyring import KeyringStore, retention_for
from .store.login_sessions import LoginSessionGrants
from .store.pending import PendingRequests
from .store.secrets import SecretStore
from .store.sessions import SessionStore
from .store.token_records import TokenRecords
from .store.users import UserStore
from .web import i18n
from .web.edge import edge_middleware
from .web.keys import (
    ACCOUNTS,
    CONSENTS,
    PASSKEYS,
    PENDING,
    PROVIDER,
    REDIS,
    SETTINGS,
    THROTTLE,
    USER_SESSIONS,
    WEBAUTHN,
)
from .web.logout import logout_context
from .web.proxies import parse_networks
from .web.routes import setup_routes
from .web.session_storage import RedisSessionStorage

logger = logging.getLogger(APP)


def _templates_dir() -> Path:
    """templates/ beside the package in a checkout, else where pip installed it."""
    beside = Path(__file__).resolve().parent.parent / "templates"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "porchlight_op" / "templates"


TEMPLATES_DIR = _templates_dir()
STATIC_DIR = TEMPLATES_DIR / "static"


def create_app(settings: Settings, client: RedisClient) -> web.Application:
    """Build the application on an open Redis client; the caller closes it."""
    # The edge middleware serves every request. It runs the template context
    # processors and the browser session for pages only, so API requests skip them.
    page_middlewares = (
        aiohttp_jinja2.context_processors_middleware,
        aiohttp_session.session_middleware(_session_storage(settings, client)),
    )
    app = web.Application(
        middlewares=[
            edge_middleware(parse_networks(settings.trusted_proxies), page_middlewares)
        ],
        client_max_size=64 * 1024,
    )
    app[SETTINGS] = settings
    app[REDIS] = client
    app[THROTTLE] = LoginThrottle(client, settings)
    app[WEBAUTHN] = PasskeyCeremonies(client, settings.issuer)
    app[PASSKEYS] = app[WEBAUTHN].store
    app[USER_SESSIONS] = UserSessions(client, settings)
    # Without context_processors, setup() adds no middleware of its own.
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app[aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY] = [aiohttp_jinja2.request_processor]
    i18n.setup_i18n(environment)
    app.cleanup_ctx.append(_provider_context)
    app.cleanup_ctx.append(_keyring_context)
    app.cleanup_ctx.append(logout_context)
    app.cleanup_ctx.append(management_context)
    setup_routes(app, STATIC_DIR)
    return app


def _session_storage(settings: Settings, client: RedisClient) -> RedisSessionStorage:
    import secrets

    return RedisSessionStorage(
        client,
        cookie_name=settings.cookie_name,
        max_age=settings.session_idle_timeout,
        httponly=True,
        samesite=settings.cookie_samesite,
        secure=settings.secure_cookies,
        key_factory=lambda: secrets.token_urlsafe(32),
        # Before login a session carries a CSRF token or a sign-in in progress,
        # which is of no use once its pending authorization request has expired.
        anonymous_max_age=min(
            settings.pending_request_lifetime, settings.session_idle_timeout
        ),
    )


async def _provider_context(app: web.Application) -> AsyncIterator[None]:
    """Load the shared secrets and build this worker's protocol objects."""
    settings = app[SETTINGS]
    client = app[REDIS]
    secrets = await load_server_secrets(SecretStore(client).get_or_create)
    server = build_server(settings, secrets)
    users = UserStore(client)

    async def load_claims(sub: str) -> dict[str, object] | None:
        user = await users.get(sub)
        if user is None or user.disabled:
            return None
        return user_claims(user)

    await _store_configured_clients(settings, client)
    await ClientStore(client).refresh_cors_origins()
    claims = ClaimsCache(client, load_claims, settings.claims_cache_ttl)
    app[PROVIDER] = Provider(
        server,
        settings,
        StateRunner(server, SessionStore(client)),
        ClientStore(client),
        claims,
        records=TokenRecords(client),
        login_sessions=LoginSessionGrants(client, settings.session_max_age),
    )
    app[ACCOUNTS] = Accounts(client, settings, on_change=claims.invalidate)
    app[PENDING] = PendingRequests(client)
    app[CONSENTS] = ConsentStore(client, settings.consent_lifetime)
    yield


async def _keyring_context(app: web.Application) -> AsyncIterator[None]:
    """Install the keyring's keys and follow its changes while the app runs."""
    settings = app[SETTINGS]
    client = app[REDIS]
    # The single key set of earlier versions seeds the keyring on first start.
    stored = await SecretStore(client).get_or_create("signing-jwks", new_signing_jwks)
    follower = KeyringFollower(
        KeyringStore(client),
        app[PROVIDER].server.keyjar,
        settings.issuer,
        retention_for(settings.access_token_lifetime, settings.id_token_lifetime),
    )
    await follower.start(json.loads(stored))
    async with following(follower, settings.key_poll_interval):
        yield


async def _store_configured_clients(settings: Settings, client: RedisClient) -> None:
    """Write the [clients.*] tables of the settings file to Redis.

    The file is authoritative for the ids it lists: each start overwrites what
    the command line may have changed for them, and removes the clients an
    earlier start wrote from the file that the file no longer lists.
    """
    store = ClientStore(client)
    for item in settings.clients.values():
        existing = await store.get(item.client_id)
        created_at = existing.created_at if existing else int(time.time())
        await store.put(client_from_settings(item, created_at))
    listed = set(settings.clients)
    for member in await client.smembers(keys.configured_clients()):
        client_id = member.decode() if isinstance(member, bytes) else member
        if client_id not in listed:
            await store.remove(client_id)
            await client.srem(keys.configured_clients(), client_id)
            logger.info("removed client %s, no longer in the settings file", client_id)
    if listed:
        await client.sadd(keys.configured_clients(), *listed)


def configure_logging(settings: Settings) -> None:
    """Log to stderr; idpyoidc logs request contents at INFO, so it gets WARNING."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("idpyoidc", "cryptojwt", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
