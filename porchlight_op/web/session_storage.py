"""aiohttp-session's Redis storage on a single Redis or a Redis Cluster client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from aiohttp_session.redis_storage import RedisStorage

from ..store.connection import RedisClient

# The session field that contains the signed-in user's sub (see login_session.py).
LOGIN_SUB_FIELD = "sub"


class RedisSessionStorage(RedisStorage):
    """RedisStorage that also accepts a RedisCluster client.

    RedisStorage's constructor raises TypeError for anything but
    redis.asyncio.Redis, although load_session and save_session only send GET and
    SET on one key, which a cluster client routes by that key. This constructor
    skips that check and sets the attributes that those methods read in
    aiohttp-session 2.12. Session keys and cookies are the same as RedisStorage's.

    A session without a login, such as the CSRF token of an anonymous login
    form, is stored for anonymous_max_age seconds instead of max_age, and an
    emptied session is deleted rather than stored.
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
        anonymous_max_age: int | None = None,
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
        # RedisStorage declares _redis as redis.asyncio.Redis. Both clients offer
        # the get, set and delete calls that this class makes.
        self._redis = client  # type: ignore[assignment]
        self._anonymous_max_age = anonymous_max_age

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        """Store the session, briefly when it has no login, or delete it if empty."""
        if session.empty:
            # RedisStorage would store the empty session for max_age seconds.
            if session.identity is not None:
                await self._redis.delete(f"{self.cookie_name}_{session.identity}")
            self.save_cookie(response, "", max_age=session.max_age)
            return
        if self._anonymous_max_age is not None and LOGIN_SUB_FIELD not in session:
            session.max_age = self._anonymous_max_age
        await super().save_session(request, response, session)
