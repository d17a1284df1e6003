"""Helpers for the token management tests: clients with token settings, sign-in."""

from __future__ import annotations

from typing import Any

import httpx
from support import REDIRECT_URI, basic_auth

from porchlight_op.models import Client
from porchlight_op.store.clients import ClientStore

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
# client_secret_jwt needs 256 bits of key (RFC 7518 3.2).
LONG_SECRET = "an-hs256-secret-of-at-least-32-characters"


async def add_client(op: Any, client_id: str, **fields: Any) -> Client:
    """Register a client with any Client field, defaulting to a confidential RP."""
    fields.setdefault("redirect_uris", (REDIRECT_URI,))
    fields.setdefault("auth_method", "client_secret_basic")
    if fields["auth_method"] == "client_secret_jwt":
        fields.setdefault("secret", LONG_SECRET)
    if fields["auth_method"] not in ("none", "private_key_jwt"):
        fields.setdefault("secret", SECRET)
    fields.setdefault("secret", None)
    fields.setdefault("scope", ("openid", "profile", "email", "offline_access"))
    client = Client(client_id=client_id, **fields)
    await ClientStore(op.redis).put(client)
    return client


async def sign_in(op: Any, browser: Any, client: Client) -> dict[str, Any]:
    """Log alice in through `client` and redeem the code; return the tokens."""
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    return await rp.redeem(reply.headers["Location"])


async def post_form(
    url: str, form: dict[str, str], client: Client | None = None
) -> httpx.Response:
    """POST a form, authenticating with HTTP Basic when a client is given."""
    headers = {}
    if client is not None and client.secret is not None:
        headers["Authorization"] = basic_auth(client.client_id, client.secret)
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=form, headers=headers)


async def bearer_get(url: str, token: str) -> httpx.Response:
    """GET with a Bearer access token."""
    async with httpx.AsyncClient() as http:
        return await http.get(url, headers={"Authorization": f"Bearer {token}"})


async def get_json(url: str) -> dict[str, Any]:
    """GET a JSON document."""
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    reply.raise_for_status()
    document: dict[str, Any] = reply.json()
    return document
