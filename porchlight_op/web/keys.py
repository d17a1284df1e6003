"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..accounts.passkeys import PasskeyCeremonies
    from ..accounts.service import Accounts
    from ..accounts.throttle import LoginThrottle
    from ..oidc.logout import Logout
    from ..oidc.provider import Provider
    from ..settings import Settings
    from ..store.connection import RedisClient
    from ..store.consent import ConsentStore
    from ..store.passkeys import PasskeyStore
    from ..store.pending import PendingRequests

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
PROVIDER: web.AppKey[Provider] = web.AppKey("provider")
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
PENDING: web.AppKey[PendingRequests] = web.AppKey("pending")
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("throttle")
LOGOUT: web.AppKey[Logout] = web.AppKey("logout")
CONSENTS: web.AppKey[ConsentStore] = web.AppKey("consents")
PASSKEYS: web.AppKey[PasskeyStore] = web.AppKey("passkeys")
WEBAUTHN: web.AppKey[PasskeyCeremonies] = web.AppKey("webauthn")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")

if TYPE_CHECKING:
    from ..oidc.user_sessions import UserSessions

USER_SESSIONS: web.AppKey[UserSessions] = web.AppKey("user_sessions")
