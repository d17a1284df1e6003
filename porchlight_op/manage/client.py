"""The management area's registration as a confidential client of the OP."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from ..log import APP
from ..models import Client
from ..settings import Settings
from ..store.clients import ClientStore
from ..store.connection import RedisClient
from ..store.secrets import SecretStore
from ..web.keys import REDIS, SETTINGS

logger = logging.getLogger(APP)

SECRET_NAME = "management-client-secret"  # noqa: S105 - a key name, not a secret
SCOPE = ("openid", "profile", "email")
CALLBACK_PATH = "/manage/callback"


@dataclass(frozen=True)
class ManagementClient:
    """The id, secret and redirect URI the management area uses at the OP."""

    client_id: str
    secret: str
    redirect_uri: str


MANAGEMENT_CLIENT: web.AppKey[ManagementClient] = web.AppKey("management_client")


def _new_secret() -> bytes:
    return secrets.token_urlsafe(32).encode()


async def ensure_management_client(
    settings: Settings, redis: RedisClient
) -> ManagementClient:
    """Store the management client in Redis and return its credentials.

    Every worker runs this at start. The secret is created once with SET NX,
    so all workers write the same client record and agree on its secret.
    """
    raw = await SecretStore(redis).get_or_create(SECRET_NAME, _new_secret)
    credentials = ManagementClient(
        client_id=settings.management_client_id,
        secret=raw.decode(),
        redirect_uri=settings.issuer + CALLBACK_PATH,
    )
    store = ClientStore(redis)
    existing = await store.get(credentials.client_id)
    created_at = existing.created_at if existing else int(time.time())
    await store.put(
        Client(
            client_id=credentials.client_id,
            redirect_uris=(credentials.redirect_uri,),
            auth_method="client_secret_basic",
            secret=credentials.secret,
            scope=SCOPE,
            name="Porchlight account management",
            created_at=created_at,
            first_party=True,
        )
    )
    if existing is None:
        logger.info("management client stored: client_id=%s", credentials.client_id)
    return credentials


async def management_context(app: web.Application) -> AsyncIterator[None]:
    """Register the management client before the app serves requests."""
    app[MANAGEMENT_CLIENT] = await ensure_management_client(app[SETTINGS], app[REDIS])
    yield
