"""Steps that several test files repeat: sign in and out, token calls, the CLI."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from support import Browser, RelyingParty, hidden_inputs

from porchlight_op.models import Client
from porchlight_op.store.clients import ClientStore

PASSWORD = "correct horse battery"
LOGOUT_URI = "http://127.0.0.1:9000/logged-out"


# -- sign in and out through a relying party --


async def add_logout_client(op: Any, client_id: str = "rp") -> Client:
    """Register a confidential client with LOGOUT_URI as its post-logout URI."""
    client = await op.add_client(client_id)
    client = Client(
        client_id=client.client_id,
        redirect_uris=client.redirect_uris,
        auth_method=client.auth_method,
        secret=client.secret,
        scope=client.scope,
        post_logout_redirect_uris=(LOGOUT_URI,),
    )
    await ClientStore(op.redis).put(client)
    return client


async def sign_in_rp(
    op: Any, browser: Browser, client: Client, username: str = "alice"
) -> tuple[RelyingParty, dict[str, Any]]:
    """Log the browser in through the code flow; return the RP and its tokens."""
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), username, PASSWORD)
    assert reply.status == 302
    token = await rp.redeem(reply.headers["Location"])
    return rp, token


def logout_url(op: Any, **params: str) -> str:
    """Return the end_session endpoint URL with `params` in its query."""
    return f"{op.url}/logout?{urlencode(params)}"


async def authorize_status(browser: Browser, rp: RelyingParty) -> str:
    """Return where a new authorization request sends the browser: code or login."""
    reply = await browser.get(rp.authorization_url())
    location = reply.headers["Location"]
    return "login" if location.startswith("/login") else "code"


async def logout_form(
    browser: Browser, url: str, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Open a logout confirmation page; return its HTML and its form fields."""
    reply = await browser.session.get(url, headers=headers, allow_redirects=False)
    page = await reply.text()
    assert reply.status == 200
    return page, hidden_inputs(page)
