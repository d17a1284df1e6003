"""The administration pages end to end in headless Chromium, driven by Playwright.

An administrator registers a client and a user through the pages. An external
relying party (Authlib) then signs that user in with the new client and reads
the edited claims at userinfo. After the administrator disables the user, the
login form rejects them. The OP runs at http://localhost:<port>; the relying
party's redirect URI points at a closed port, and the test reads the URL of
the browser's request there. Skipped without Playwright or Chromium, unless
REQUIRE_BROWSER_TESTS=required.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from admin_support import ADMIN_PASSWORD, add_admin
from chromium_support import (
    Browser,
    NewContext,
    Page,
    PlaywrightError,
    context_factory,
    expect,
    follow_to,
    launch_chromium,
    localhost_op,
)
from conftest import OP
from support import REDIRECT_URI, RelyingParty

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SCOPE = "openid profile email"
USER_PASSWORD = "erin's passphrase"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Browser]:
    """Launch the system Chromium once for the module."""
    async with launch_chromium() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="module")
async def new_context(chromium: Browser) -> AsyncIterator[NewContext]:
    """Return a factory for browser contexts, each closed after the test."""
    async with context_factory(chromium) as create:
        yield create


@pytest_asyncio.fixture(loop_scope="module")
async def op(redis_server: str, signing_jwks: bytes) -> AsyncIterator[OP]:
    """The OP on a loopback HTTP server, with http://localhost:<port> as issuer."""
    async with localhost_op(redis_server, signing_jwks) as running:
        yield running


# -- helpers --


async def log_in(page: Page, username: str, password: str) -> None:
    """Fill and submit the OP's login form."""
    await expect(page).to_have_url(re.compile(r"/login\b"))
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def heading(page: Page, name: str) -> None:
    await expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


async def register_client(page: Page) -> str:
    """Register a confidential client through the pages; return its secret."""
    await page.get_by_role("link", name="Clients", exact=True).first.click()
    await page.get_by_role("link", name="Register a client").click()
    await heading(page, "Register a client")
    await page.get_by_label("Client id").fill("shop")
    await page.get_by_label("Display name").fill("Shop")
    await page.get_by_label("Redirect URIs", exact=True).fill(REDIRECT_URI)
    await page.get_by_label("Scopes").fill(SCOPE)
    await page.get_by_label("Token endpoint authentication").select_option(
        "client_secret_basic"
    )
    await page.get_by_label("First party").check()
    await page.get_by_role("button", name="Register client").click()
    await heading(page, "Client created")
    return await page.get_by_label("Client secret").input_value()


async def create_user(page: Page) -> None:
    """Create the user erin through the pages and change a claim."""
    await page.get_by_role("link", name="Users", exact=True).first.click()
    await page.get_by_role("link", name="Create a user").click()
    await page.get_by_label("Username", exact=True).fill("erin")
    await page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
    await page.get_by_label("Repeat the password").fill(USER_PASSWORD)
    await page.get_by_label("Full name", exact=True).fill("Erin")
    await page.get_by_label("Email address", exact=True).fill("erin@example.org")
    await page.get_by_role("button", name="Create user").click()
    await heading(page, "erin")
    await expect(page.locator("#done")).to_have_text("The user was created.")
    await page.get_by_label("Full name", exact=True).fill("Erin Example")
    await page.get_by_role("button", name="Save claims").click()
    await expect(page.locator("#done")).to_have_text("The claims were saved.")


async def rp_login(
    new_context: Callable[..., Any], rp: RelyingParty
) -> tuple[Page, str | None]:
    """Log erin in at the RP in a fresh browser; return the page and the RP URL.

    The URL is None when the OP kept the browser on the login form.
    """
    page = await (await new_context()).new_page()
    await page.goto(rp.authorization_url(SCOPE))
    try:
        url = await follow_to(
            page, REDIRECT_URI, lambda: log_in(page, "erin", USER_PASSWORD)
        )
    except PlaywrightError:
        return page, None
    return page, url


# -- the walk --


async def test_admin_pages_end_to_end(op, new_context):
    await add_admin(op)
    admin = await (await new_context()).new_page()
    await admin.goto(op.url + "/manage/admin")
    await log_in(admin, "root", ADMIN_PASSWORD)
    await heading(admin, "Administration")

    secret = await register_client(admin)
    await create_user(admin)

    rp = RelyingParty(op.url, "shop", secret, "client_secret_basic")
    await rp.discover()
    _, location = await rp_login(new_context, rp)
    assert location is not None
    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    info = await rp.userinfo(token["access_token"])
    assert claims["aud"] in ("shop", ["shop"])
    assert info.status_code == 200
    assert info.json()["name"] == "Erin Example"
    assert info.json()["email"] == "erin@example.org"

    await admin.get_by_label("Yes, disable this user").check()
    await admin.get_by_role("button", name="Disable user").click()
    await expect(admin.locator("#user-state")).to_have_text("disabled")
    refused, location = await rp_login(new_context, rp)
    assert location is None
    await expect(refused).to_have_url(re.compile(r"/login\b"))
    await expect(refused.get_by_role("alert")).to_be_visible()
    revoked = await rp.userinfo(token["access_token"])
    assert revoked.status_code == 401


async def test_admin_pages_fit_a_phone(op, new_context):
    await add_admin(op)
    context = await new_context(viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await page.goto(op.url + "/manage/admin/clients/new")
    await log_in(page, "root", ADMIN_PASSWORD)
    await heading(page, "Register a client")

    width = await page.evaluate("document.documentElement.scrollWidth")

    assert width <= 360


async def test_admin_pages_work_without_javascript(op, new_context):
    await add_admin(op)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(op.url + "/manage/admin/invitations")
    await log_in(page, "root", ADMIN_PASSWORD)
    await heading(page, "Invitations")

    await page.get_by_label("Email address").fill("kim@example.org")
    await page.get_by_role("button", name="Create invitation").click()

    await heading(page, "Invitation created")
    link = await page.get_by_label("Invitation link").input_value()
    assert link.startswith(op.url + "/register/")
