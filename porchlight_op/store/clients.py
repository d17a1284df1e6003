"""Registered clients in Redis."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from porchlight_op import log
from porchlight_op.models import Client
from porchlight_op.settings import ClientSettings
from porchlight_op.store import keys
from porchlight_op.store.connection import RedisClient

logger = logging.getLogger(log.STORE)


class ClientStore:
    """Reads and writes Client records, indexed by keys.clients_index()."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def put(self, client: Client) -> None:
        """Insert or replace the client."""
        await self._redis.set(keys.client(client.client_id), client.to_json())
        await self._redis.sadd(keys.clients_index(), client.client_id)
        await self.refresh_cors_origins()
        logger.debug("client stored: client_id=%s", client.client_id)

    async def add(self, client: Client) -> bool:
        """Insert the client unless its id is taken; return False when it was."""
        created = await self._redis.set(
            keys.client(client.client_id), client.to_json(), nx=True
        )
        if not created:
            return False
        await self._redis.sadd(keys.clients_index(), client.client_id)
        await self.refresh_cors_origins()
        logger.info("client added: client_id=%s", client.client_id)
        return True

    async def get(self, client_id: str) -> Client | None:
        """Return the client, or None when it is not registered."""
        raw = await self._redis.get(keys.client(client_id))
        return None if raw is None else Client.from_json(raw)

    async def list(self) -> list[Client]:
        """Return every client, sorted by client_id."""
        members = await self._redis.smembers(keys.clients_index())
        client_ids = sorted(_text(member) for member in members)
        # Not a MULTI: the client keys may sit in different cluster slots.
        async with self._redis.pipeline(transaction=False) as pipe:
            for client_id in client_ids:
                pipe.get(keys.client(client_id))
            records = await pipe.execute()
        return [Client.from_json(raw) for raw in records if raw is not None]

    async def remove(self, client_id: str) -> bool:
        """Delete the client, returning False when it was not registered."""
        deleted = await self._redis.delete(keys.client(client_id))
        await self._redis.srem(keys.clients_index(), client_id)
        await self.refresh_cors_origins()
        if deleted:
            logger.info("client removed: client_id=%s", client_id)
        return bool(deleted)

    async def refresh_cors_origins(self) -> None:
        """Rebuild the set of redirect URI origins that CORS allows."""
        # NOTE: two clients written at the same moment by different processes
        # may leave one origin out until the next write or restart, because
        # each rebuild reads the client list before replacing the set.
        origins = sorted(
            {
                origin
                for client in await self.list()
                for uri in client.redirect_uris
                if (origin := redirect_origin(uri)) is not None
            }
        )
        # Add before removing, so an origin that stays is never missing.
        if origins:
            await self._redis.sadd(keys.cors_origins(), *origins)
        current = await self._redis.smembers(keys.cors_origins())
        stale = {_text(member) for member in current} - set(origins)
        if stale:
            await self._redis.srem(keys.cors_origins(), *sorted(stale))

    async def is_cors_origin(self, origin: str) -> bool:
        """Tell whether `origin` is the origin of a registered redirect URI."""
        return bool(await self._redis.sismember(keys.cors_origins(), origin))


def redirect_origin(uri: str) -> str | None:
    """Return the web origin (RFC 6454 6.2) of an http(s) URI, else None."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = 80 if parts.scheme == "http" else 443
    try:
        port = parts.port
    except ValueError:
        return None
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def client_from_settings(spec: ClientSettings, created_at: int) -> Client:
    """Build the stored record of a client declared in settings or on the CLI.

    Every field the two dataclasses share is copied, so a field added to both
    reaches Redis without touching this function.
    """
    shared = {field.name for field in dataclasses.fields(Client)} & {
        field.name for field in dataclasses.fields(ClientSettings)
    }
    values: dict[str, Any] = {name: getattr(spec, name) for name in shared}
    return Client(**values, created_at=created_at)


def client_settings_of(client: Client) -> ClientSettings:
    """Return the settings form of a stored client, validated like the config file.

    Raises SettingsError when the record breaks a rule of ClientSettings.
    """
    shared = {field.name for field in dataclasses.fields(Client)} & {
        field.name for field in dataclasses.fields(ClientSettings)
    }
    return ClientSettings(**{name: getattr(client, name) for name in shared})


def new_client_secret() -> str:
    """Return a generated client secret: 256 random bits, base64url."""
    return secrets.token_urlsafe(32)


class ClientConflict(Exception):
    """Raised when a new client's id is taken; str() names what has it."""


async def add_new_client(
    store: ClientStore, configured_ids: Collection[str], record: Client
) -> None:
    """Store a client that is new, or raise ClientConflict.

    An id listed in the settings file is rejected even when it is not stored
    yet, because the next start would overwrite the record.
    """
    if record.client_id in configured_ids:
        raise ClientConflict(
            f"client {record.client_id!r} is already defined in the config file"
        )
    if not await store.add(record):
        raise ClientConflict(f"client {record.client_id!r} already exists")
