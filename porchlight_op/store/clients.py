"""Registered clients in Redis."""

from __future__ import annotations

import logging

from porchlight_op import log
from porchlight_op.models import Client
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
        logger.debug("client stored: client_id=%s", client.client_id)

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
        if deleted:
            logger.info("client removed: client_id=%s", client_id)
        return bool(deleted)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
