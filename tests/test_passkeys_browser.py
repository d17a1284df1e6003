"""Passkeys in headless Chromium with a virtual authenticator (DevTools WebAuthn).

The OP runs at http://localhost:<port>, because Chromium runs WebAuthn on
localhost but not on 127.0.0.1. Each page gets its own virtual authenticator
(ctap2, internal transport, resident keys, user verification), since a page
without one leaves navigator.credentials waiting. The RP's redirect_uri points
at a closed port on 127.0.0.1 and the tests read the URL the browser requested
there. The module is skipped when Playwright or Chromium is missing, unless
REQUIRE_BROWSER_TESTS=required (set in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from chromium_support import (
    Browser,
    BrowserContext,
    CDPSession,
    NewContext,
    Page,
    context_factory,
    expect,
    follow_to,
    launch_chromium,
    localhost_op,
)
from conftest import OP
from support import REDIRECT_URI, RelyingParty, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.store import keys
from porchlight_op.store.invitations import InvitationStore
from porchlight_op.store.passkeys import PasskeyStore

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SCOPE = "openid profile email"
# Makes the login page skip conditional UI, so a test can press the button.
NO_CONDITIONAL_UI = (
    "PublicKeyCredential.isConditionalMediationAvailable ="
    " () => Promise.resolve(false);"
)
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


# -- fixtures: one Chromium per module, a new context per test --


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


@pytest_asyncio.fixture(loop_scope="module")
async def rp(op: OP) -> RelyingParty:
    client = await op.add_client("rp")
    relying_party = op.rp(client)
    await relying_party.discover()
    return relying_party


# -- helpers --


class Authenticated:
    """A page with a virtual authenticator attached through DevTools."""

    def __init__(self, page: Page, cdp: CDPSession, authenticator_id: str) -> None:
        self.page = page
        self.cdp = cdp
        self.authenticator_id = authenticator_id

    async def credentials(self) -> list[dict[str, Any]]:
        reply = await self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        return list(reply["credentials"])

    async def replace_authenticator(self, **options: Any) -> None:
        """Detach the authenticator and attach an empty one with these options."""
        await self.cdp.send(
            "WebAuthn.removeVirtualAuthenticator",
            {"authenticatorId": self.authenticator_id},
        )
        self.authenticator_id = await _add_authenticator(self.cdp, **options)


async def _add_authenticator(cdp: CDPSession, **options: Any) -> str:
    reply = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {**AUTHENTICATOR, **options}},
    )
    return str(reply["authenticatorId"])


async def open_page(
    context: BrowserContext, conditional_ui: bool = True, **options: Any
) -> Authenticated:
    """Open a page with a virtual authenticator; optionally hide conditional UI."""
    page = await context.new_page()
    if not conditional_ui:
        await page.add_init_script(NO_CONDITIONAL_UI)
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    return Authenticated(page, cdp, await _add_authenticator(cdp, **options))


async def invitation_link(op: OP) -> str:
    token, _ = await InvitationStore(op.redis).create(3600)
    return f"{op.url}/register/{token}"


async def register_with_passkey(page: Page, op: OP, username: str) -> None:
    """Open a new invitation link and create the account with a passkey."""
    await page.goto(await invitation_link(op))
    await page.get_by_label("Username").fill(username)
    await page.get_by_role("button", name="Create account with a passkey").click()
    await expect(page.get_by_role("heading", name="Account created")).to_be_visible()


async def id_token_claims(rp: RelyingParty, location: str) -> dict[str, Any]:
    assert query_of(location)["state"] == rp.state
    token = await rp.redeem(location)
    return await rp.validate_id_token(token["id_token"])


# -- tests --


async def test_invitation_passkey_then_usernameless_login(op, rp, new_context):
    context = await new_context()
    tab = await open_page(context, conditional_ui=False)

    await register_with_passkey(tab.page, op, "dora")
    await tab.page.goto(rp.authorization_url(SCOPE))
    button = tab.page.get_by_role("button", name="Sign in with a passkey")
    location = await follow_to(tab.page, REDIRECT_URI, button.click)

    claims = await id_token_claims(rp, location)
    assert claims["amr"] == ["hwk", "user"]
    stored = await op.redis.hgetall(keys.passkeys(claims["sub"]))
    assert len(stored) == 1
    (credential,) = await tab.credentials()
    assert credential["isResidentCredential"]
    assert credential["signCount"] >= 1


async def test_conditional_ui_signs_in_without_click(op, rp, new_context):
    tab = await open_page(await new_context())
    await register_with_passkey(tab.page, op, "erin")

    location = await follow_to(
        tab.page, REDIRECT_URI, lambda: tab.page.goto(rp.authorization_url(SCOPE))
    )

    claims = await id_token_claims(rp, location)
    assert claims["amr"] == ["hwk", "user"]


async def test_manage_add_rename_remove_passkeys(op, new_context):
    tab = await open_page(await new_context())
    page = tab.page
    await register_with_passkey(page, op, "fay")
    await page.goto(op.url + "/manage")
    await expect(page.get_by_role("heading", name="Sign-in methods")).to_be_visible()

    # The authenticator contains the first passkey, so the browser excludes it.
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(
        page.get_by_text("This passkey is registered already.")
    ).to_be_visible()

    await tab.replace_authenticator()
    await page.get_by_label("Name of the new passkey (optional)").fill("Backup key")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.get_by_text("The passkey was added.")).to_be_visible()
    await expect(page.locator(".passkey-name")).to_have_count(2)

    await page.get_by_label("New name for Backup key").fill("Spare key")
    await (
        page.locator("li", has_text="Backup key")
        .get_by_role("button", name="Rename")
        .click()
    )
    await expect(page.get_by_text("The passkey was renamed.")).to_be_visible()
    await expect(page.locator(".passkey-name", has_text="Spare key")).to_be_visible()

    await page.get_by_role("button", name="Remove Spare key").click()
    await expect(page.get_by_text("The passkey was removed.")).to_be_visible()
    await expect(page.locator(".passkey-name")).to_have_count(1)

    remaining = (await page.locator(".passkey-name").inner_text()).strip()
    await page.get_by_role("button", name=f"Remove {remaining}").click()
    await expect(page.get_by_text("only way to sign in")).to_be_visible()
    user_sub = await _sub_of(op, "fay")
    assert len(await PasskeyStore(op.redis).list(user_sub)) == 1


async def test_cancelled_login_shows_error(op, rp, new_context):
    tab = await open_page(await new_context(), conditional_ui=False)
    await register_with_passkey(tab.page, op, "gus")
    await tab.cdp.send(
        "WebAuthn.setUserVerified",
        {"authenticatorId": tab.authenticator_id, "isUserVerified": False},
    )

    await tab.page.goto(rp.authorization_url(SCOPE))
    await tab.page.get_by_role("button", name="Sign in with a passkey").click()

    error = tab.page.get_by_role("alert")
    await expect(error).to_have_text("The passkey request was cancelled or timed out.")
    await expect(tab.page).to_have_url(re.compile(r"/login\b"))


async def test_login_page_has_no_csp_violations(op, rp, new_context):
    tab = await open_page(await new_context(), conditional_ui=False)
    violations: list[str] = []
    tab.page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )

    await tab.page.goto(rp.authorization_url(SCOPE))
    button = tab.page.get_by_role("button", name="Sign in with a passkey")

    await expect(button).to_be_visible()
    assert violations == []


async def _sub_of(op: OP, username: str) -> str:
    user = await Accounts(op.redis, op.settings).find(username)
    assert user is not None
    return user.sub
