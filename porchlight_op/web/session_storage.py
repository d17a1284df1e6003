"""aiohttp-session's Redis storage on a single Redis or a Redis Cluster client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp_session import AbstractStorage
from aiohttp_session.redis_storage import RedisStorage

from ..store.connection import RedisClient


class RedisSessionStorage(RedisStorage):
    """RedisStorage that also accepts a RedisCluster client.

    RedisStorage's constructor raises TypeError for anything but
    redis.asyncio.Redis, although load_session and save_session only send GET and
    SET on one key, which a cluster client routes by that key. This constructor
    skips that check and sets the attributes that those methods read in
    aiohttp-session 2.12. Session keys and cookies are the same as RedisStorage's.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        cookie_name: str = "AIOHTTP_SESSION",
        domain: str | None = None,
        max_age: int | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = None,
        key_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
        encoder: Callable[[object], str] = json.dumps,
        decoder: Callable[[str], Any] = json.loads,
    ) -> None:
        AbstractStorage.__init__(
            self,
            cookie_name=cookie_name,
            domain=domain,
            max_age=max_age,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            encoder=encoder,
            decoder=decoder,
        )
        self._key_factory = key_factory
        # RedisStorage declares _redis as redis.asyncio.Redis; both clients offer
        # the get and set calls that its methods make.
        self._redis = client  # type: ignore[assignment]
