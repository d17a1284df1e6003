"""Helpers for the administration page tests: accounts, sign-in and forms."""

from __future__ import annotations

from typing import Any

import aiohttp
from support import Browser, hidden_inputs
from test_manage import sign_in

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import ADMIN_GROUP, User

ADMIN_PASSWORD = "admin passphrase 1"
ADMIN = "/manage/admin"


async def add_admin(op: Any, username: str = "root") -> User:
    """Create an administrator with ADMIN_PASSWORD."""
    accounts = Accounts(op.redis, op.settings)
    return await accounts.create_user(
        username, ADMIN_PASSWORD, {"name": "Root"}, (ADMIN_GROUP,)
    )


async def sign_in_admin(browser: Browser, op: Any, username: str = "root") -> None:
    """Sign the browser in to the management area as the given administrator."""
    chain, _ = await sign_in(browser, op, username=username, password=ADMIN_PASSWORD)
    assert chain[-1] == "/manage/credentials", chain


async def csrf(browser: Browser, op: Any, path: str = ADMIN + "/users/new") -> str:
    """Return the session's CSRF token from an administration page."""
    page = await browser.get(op.url + path)
    assert page.status == 200, await page.text()
    return hidden_inputs(await page.text())["csrf_token"]


async def post(
    browser: Browser, op: Any, path: str, fields: dict[str, Any]
) -> aiohttp.ClientResponse:
    """POST a form with the session's CSRF token added."""
    data = {"csrf_token": await csrf(browser, op), **fields}
    response = await browser.session.post(
        op.url + path, data=data, allow_redirects=False
    )
    await response.read()
    return response
