"""Helpers for the session listing and revocation tests: sign-ins and token checks."""

from __future__ import annotations

from typing import Any

import httpx
from support import Browser, RelyingParty, basic_auth, hidden_inputs

from porchlight_op.models import Client

PASSWORD = "correct horse battery"
MAX_REDIRECTS = 8


async def manage_sign_in(
    browser: Browser, base: str, username: str = "alice", start: str = "/manage"
) -> Any:
    """Follow the management sign-in from `start`; return the last reply."""
    reply = await browser.get(base + start)
    for _ in range(MAX_REDIRECTS):
        if reply.status != 302:
            return reply
        location = reply.headers["Location"]
        url = location if location.startswith("http") else base + location
        if location.startswith("/login"):
            page = await browser.get(url)
            form = hidden_inputs(await page.text())
            form.update({"username": username, "password": PASSWORD})
            reply = await browser.post_form(base + "/login", form)
        else:
            reply = await browser.get(url)
    raise AssertionError(f"sign-in did not finish within {MAX_REDIRECTS} redirects")


async def rp_sign_in(
    issuer: str, browser: Browser, client: Client, username: str = "alice"
) -> tuple[RelyingParty, dict[str, Any]]:
    """Sign the browser in to a relying party; return it and its tokens."""
    rp = RelyingParty(issuer, client.client_id, client.secret, client.auth_method)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), username, PASSWORD)
    assert reply.status == 302, await reply.text()
    token = await rp.redeem(reply.headers["Location"])
    return rp, token


async def needs_login(browser: Browser, base: str) -> bool:
    """Tell whether the sessions page sends this browser to the login form."""
    reply = await browser.get(base + "/manage/sessions")
    if reply.status != 302:
        return False
    authorization = await browser.get(base + reply.headers["Location"])
    return authorization.status == 302 and authorization.headers["Location"].startswith(
        "/login"
    )


async def sessions_form(browser: Browser, base: str) -> dict[str, str]:
    """Return the hidden fields of the sessions page (its CSRF token among them)."""
    page = await browser.get(base + "/manage/sessions")
    assert page.status == 200
    return hidden_inputs(await page.text())


async def refresh(base: str, client: Client, refresh_token: str) -> httpx.Response:
    """Send a refresh token request authenticated with client_secret_basic."""
    async with httpx.AsyncClient() as http:
        return await http.post(
            base + "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"Authorization": basic_auth(client.client_id, client.secret)},
        )


async def userinfo(base: str, access_token: str) -> httpx.Response:
    """Call userinfo with a bearer token."""
    async with httpx.AsyncClient() as http:
        return await http.get(
            base + "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )


async def introspect(base: str, client: Client, token: str) -> dict[str, Any]:
    """Introspect a token as its client; return the JSON response."""
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            base + "/introspect",
            data={"token": token},
            headers={"Authorization": basic_auth(client.client_id, client.secret)},
        )
    assert reply.status_code == 200
    answer: dict[str, Any] = reply.json()
    return answer
