"""The login and logout pages in headless Chromium, driven by Playwright.

The OP runs at http://localhost:<port> because Chromium treats localhost as a
secure context. The relying party's redirect_uri and post_logout_redirect_uri
point at a closed port on 127.0.0.1: the tests read the URL of the browser's
request there, so no relying party runs. The module is skipped when Playwright or
Chromium is missing, unless REQUIRE_BROWSER_TESTS=required (set in CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from chromium_support import (
    TIMEOUT_MS,
    Browser,
    BrowserContext,
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

from porchlight_op.models import Client
from porchlight_op.web.consent import SCOPE_DESCRIPTIONS

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery"
# Scopes a first-party client receives without the consent page, which
# offline_access would bring up.
LOGIN_SCOPE = "openid profile email"
LOGOUT_URI = "http://127.0.0.1:9000/logged-out"
CSP_MESSAGE = re.compile(r"content.security.policy", re.IGNORECASE)


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
async def client(op: OP) -> Client:
    await op.add_user("alice", PASSWORD)
    return await op.add_client("rp", post_logout_redirect_uris=(LOGOUT_URI,))


@pytest_asyncio.fixture(loop_scope="module")
async def rp(op: OP, client: Client) -> RelyingParty:
    relying_party = op.rp(client)
    await relying_party.discover()
    return relying_party


# -- helpers --


async def open_page(context: BrowserContext) -> tuple[Page, list[str]]:
    """Open a page whose CSP console messages are collected."""
    page = await context.new_page()
    violations: list[str] = []

    def record(message: Any) -> None:
        if CSP_MESSAGE.search(message.text):
            violations.append(message.text)

    page.on("console", record)
    return page, violations


async def open_login_form(
    page: Page, rp: RelyingParty, scope: str = LOGIN_SCOPE
) -> None:
    await page.goto(rp.authorization_url(scope))
    await expect(page).to_have_url(re.compile(r"/login\b"), timeout=TIMEOUT_MS)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible(
        timeout=TIMEOUT_MS
    )


async def fill_login_form(page: Page, password: str) -> None:
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(password)


async def sign_in(page: Page, rp: RelyingParty) -> str:
    """Log in through the form; return the RP callback URL with the code."""
    await open_login_form(page, rp)
    await fill_login_form(page, PASSWORD)
    button = page.get_by_role("button", name="Sign in", exact=True)
    return await follow_to(page, REDIRECT_URI, button.click)


async def assert_code_redeems(rp: RelyingParty, op: OP, location: str) -> None:
    params = query_of(location)
    assert params["state"] == rp.state
    assert params["iss"] == op.url
    assert params["code"]
    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["iss"] == op.url


def logout_url(op: OP, state: str) -> str:
    params = {
        "client_id": "rp",
        "post_logout_redirect_uri": LOGOUT_URI,
        "state": state,
    }
    return f"{op.url}/logout?{urlencode(params)}"


async def press_tab_until_focused(page: Page, name: str, limit: int = 10) -> None:
    """Press Tab until the button with this name has the focus."""
    button = page.get_by_role("button", name=name)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await button.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{limit} Tab presses did not reach the {name!r} button")


async def confirm_logout_by_keyboard(page: Page, op: OP) -> str:
    """Confirm the logout page with Tab and Enter; return the RP URL reached."""
    await page.goto(logout_url(op, "bye-1"))
    await expect(page.get_by_role("heading", name="Sign out")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    await press_tab_until_focused(page, "Sign out")
    return await follow_to(page, LOGOUT_URI, lambda: page.keyboard.press("Enter"))


# -- login --


async def test_login_reaches_rp_with_code(op, rp, new_context):
    page, _ = await open_page(await new_context())

    location = await sign_in(page, rp)

    await assert_code_redeems(rp, op, location)


async def test_login_by_keyboard_only(op, rp, new_context):
    page, _ = await open_page(await new_context())
    await open_login_form(page, rp)

    await expect(page.get_by_label("Username")).to_be_focused(timeout=TIMEOUT_MS)
    await page.keyboard.type("alice")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused(timeout=TIMEOUT_MS)
    await page.keyboard.type(PASSWORD)
    location = await follow_to(page, REDIRECT_URI, lambda: page.keyboard.press("Enter"))

    await assert_code_redeems(rp, op, location)


async def test_login_without_javascript(op, rp, new_context):
    page, _ = await open_page(await new_context(java_script_enabled=False))

    location = await sign_in(page, rp)

    await assert_code_redeems(rp, op, location)


async def test_wrong_password_shows_error(op, rp, new_context):
    page, _ = await open_page(await new_context())
    await open_login_form(page, rp)

    await fill_login_form(page, "wrong password")
    await page.get_by_role("button", name="Sign in", exact=True).click()

    error = page.get_by_role("alert")
    await expect(error).to_be_visible(timeout=TIMEOUT_MS)
    message = (await error.inner_text()).strip()
    assert message
    username = page.get_by_label("Username")
    await expect(username).to_have_value("alice", timeout=TIMEOUT_MS)
    await expect(username).to_have_accessible_description(message, timeout=TIMEOUT_MS)
    password = page.get_by_label("Password")
    await expect(password).to_be_focused(timeout=TIMEOUT_MS)
    await expect(password).to_have_value("", timeout=TIMEOUT_MS)


async def test_login_inputs_have_labels(op, rp, new_context):
    page, _ = await open_page(await new_context())
    await open_login_form(page, rp)

    inputs = page.locator("main input:not([type=hidden])")
    count = await inputs.count()
    ids = [await inputs.nth(i).get_attribute("id") for i in range(count)]

    assert ids == ["username", "password"]
    for input_id in ids:
        label = page.locator(f'label[for="{input_id}"]')
        text = (await label.inner_text()).strip()
        labelled = page.get_by_label(text, exact=True)
        await expect(labelled).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(labelled).to_have_attribute("id", input_id, timeout=TIMEOUT_MS)


async def test_signed_in_browser_skips_login(op, rp, new_context):
    page, _ = await open_page(await new_context())
    await sign_in(page, rp)

    url = rp.authorization_url(LOGIN_SCOPE)
    location = await follow_to(page, REDIRECT_URI, lambda: page.goto(url))

    await assert_code_redeems(rp, op, location)


# -- logout --


async def test_logout_confirmed_by_keyboard(op, rp, new_context):
    page, _ = await open_page(await new_context())
    await sign_in(page, rp)

    location = await confirm_logout_by_keyboard(page, op)

    assert location.startswith(LOGOUT_URI + "?")
    assert query_of(location) == {"state": "bye-1"}
    await open_login_form(page, rp)


async def test_logout_without_javascript(op, rp, new_context):
    page, _ = await open_page(await new_context(java_script_enabled=False))
    await sign_in(page, rp)

    location = await confirm_logout_by_keyboard(page, op)

    assert location.startswith(LOGOUT_URI + "?")
    assert query_of(location) == {"state": "bye-1"}
    await open_login_form(page, rp)


# -- security headers as the browser applies them --


async def test_pages_cause_no_csp_violations(op, rp, new_context):
    page, violations = await open_page(await new_context())
    button = page.get_by_role("button", name="Sign in", exact=True)

    await open_login_form(page, rp)
    await fill_login_form(page, "wrong password")
    await button.click()
    await expect(page.get_by_role("alert")).to_be_visible(timeout=TIMEOUT_MS)
    await page.get_by_label("Password").fill(PASSWORD)
    await follow_to(page, REDIRECT_URI, button.click)
    response = await page.goto(logout_url(op, "bye-2"))
    await expect(page.get_by_role("heading", name="Sign out")).to_be_visible(
        timeout=TIMEOUT_MS
    )

    assert response is not None
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert violations == []


async def test_csp_violation_is_detected(op, rp, new_context):
    # Shows that the console check above can fail: the policy blocks an
    # inline style, and Chromium reports that on the console.
    page, violations = await open_page(await new_context())
    await open_login_form(page, rp)

    with_style = "document.head.insertAdjacentHTML('beforeend', '<style>p{}</style>')"
    await page.evaluate(with_style)
    await page.wait_for_timeout(200)

    assert violations


# -- consent, for a client that is not first-party --

CONSENT_SCOPES = ("openid", "profile", "email", "offline_access")


@pytest_asyncio.fixture(loop_scope="module")
async def third_party(op: OP, client: Client) -> RelyingParty:
    registered = await op.add_client("tp", first_party=False, scope=CONSENT_SCOPES)
    relying_party = op.rp(registered)
    await relying_party.discover()
    return relying_party


async def open_consent_page(page: Page, rp: RelyingParty) -> None:
    await open_login_form(page, rp, " ".join(CONSENT_SCOPES))
    await fill_login_form(page, PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/consent\b"), timeout=TIMEOUT_MS)
    await expect(page.get_by_role("heading", name="Allow access")).to_be_visible(
        timeout=TIMEOUT_MS
    )


async def test_consent_lists_scopes_in_words(op, third_party, new_context):
    page, _ = await open_page(await new_context())

    await open_consent_page(page, third_party)

    items = page.get_by_role("list").get_by_role("listitem")
    texts = [text.strip() for text in await items.all_inner_texts()]
    assert texts == [SCOPE_DESCRIPTIONS[scope] for scope in CONSENT_SCOPES]
    for scope in CONSENT_SCOPES:
        assert scope not in texts


async def test_consent_allow_by_keyboard(op, third_party, new_context):
    page, _ = await open_page(await new_context())
    await open_consent_page(page, third_party)

    allow = page.get_by_role("button", name="Allow")
    await expect(allow).to_be_focused(timeout=TIMEOUT_MS)
    location = await follow_to(page, REDIRECT_URI, lambda: page.keyboard.press("Enter"))

    await assert_code_redeems(third_party, op, location)


async def test_consent_allow_without_javascript(op, third_party, new_context):
    page, _ = await open_page(await new_context(java_script_enabled=False))
    await open_consent_page(page, third_party)

    allow = page.get_by_role("button", name="Allow")
    location = await follow_to(page, REDIRECT_URI, allow.click)

    await assert_code_redeems(third_party, op, location)


async def test_consent_deny_returns_access_denied(op, third_party, new_context):
    page, _ = await open_page(await new_context())
    await open_consent_page(page, third_party)

    deny = page.get_by_role("button", name="Deny")
    location = await follow_to(page, REDIRECT_URI, deny.click)

    params = query_of(location)
    assert params["error"] == "access_denied"
    assert params["state"] == third_party.state
    assert "code" not in params
