"""Login page: CSRF, uniform failures, session cookies and single sign-on."""

from __future__ import annotations

import re
import unicodedata
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from support import REDIRECT_URI, Browser, hidden_inputs, pkce_pair, query_of

PASSWORD = "correct horse battery"
COOKIE = "porchlight_session"
ERROR_PARAGRAPH = re.compile(r'<p class="error"[^>]*>.*?</p>', re.DOTALL)


def authorization_url(op, **extra: str) -> str:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "state-7",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return op.url + "/authorization?" + urlencode(params)


async def open_login_form(op, browser) -> tuple[str, dict[str, str]]:
    """Start an authorization request and return the login page and its form."""
    response = await browser.get(authorization_url(op))
    assert response.status == 302
    page = await browser.get(op.url + response.headers["Location"])
    assert page.status == 200
    html = await page.text()
    return html, hidden_inputs(html)


async def submit(op, browser, form, username, password):
    return await browser.post_form(
        op.url + "/login", {**form, "username": username, "password": password}
    )


async def is_signed_in(op, browser) -> bool:
    """Return whether the browser's session passes prompt=none."""
    response = await browser.get(authorization_url(op, prompt="none"))
    assert response.status == 302
    return "code" in query_of(response.headers["Location"])


def session_cookie(browser) -> str | None:
    for cookie in browser.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    return None


def set_cookies(response) -> list[SimpleCookie]:
    cookies = []
    for header in response.headers.getall("Set-Cookie", []):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        cookies.append(cookie)
    return cookies


@pytest.fixture
async def rp(op):
    return await op.add_client("rp")


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


# -- CSRF --


async def test_login_form_has_csrf_token(op, browser, rp):
    _, form = await open_login_form(op, browser)

    assert len(form["csrf_token"]) >= 32
    assert form["request"]


async def test_login_without_csrf_forbidden(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    del form["csrf_token"]

    response = await submit(op, browser, form, "alice", PASSWORD)

    assert response.status == 403
    assert not await is_signed_in(op, browser)


async def test_login_with_wrong_csrf_forbidden(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    form["csrf_token"] = "A" * len(form["csrf_token"])

    response = await submit(op, browser, form, "alice", PASSWORD)

    assert response.status == 403
    assert not await is_signed_in(op, browser)


async def test_csrf_token_of_other_browser_forbidden(op, browser, rp, alice):
    other = Browser.open(op.url)
    try:
        _, other_form = await open_login_form(op, other)
    finally:
        await other.close()
    _, form = await open_login_form(op, browser)
    form["csrf_token"] = other_form["csrf_token"]

    response = await submit(op, browser, form, "alice", PASSWORD)

    assert response.status == 403
    assert not await is_signed_in(op, browser)


# -- failed logins look alike --


async def test_unknown_user_and_wrong_password_look_alike(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)

    unknown = await submit(op, browser, form, "mallory", PASSWORD)
    unknown_html = await unknown.text()
    wrong = await submit(op, browser, form, "alice", "wrong password")
    wrong_html = await wrong.text()

    assert unknown.status == wrong.status
    unknown_error = ERROR_PARAGRAPH.search(unknown_html)
    wrong_error = ERROR_PARAGRAPH.search(wrong_html)
    assert unknown_error is not None
    assert wrong_error is not None
    assert unknown_error.group(0) == wrong_error.group(0)


async def test_failed_login_keeps_request(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    failed = await submit(op, browser, form, "alice", "wrong password")
    retry_form = hidden_inputs(await failed.text())

    response = await submit(op, browser, retry_form, "alice", PASSWORD)

    assert response.status == 302
    assert "code" in query_of(response.headers["Location"])


async def test_failed_login_does_not_sign_in(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)

    await submit(op, browser, form, "alice", "wrong password")

    assert not await is_signed_in(op, browser)


# -- session cookie --


async def test_session_id_changes_at_login(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    before = session_cookie(browser)
    assert before is not None

    await submit(op, browser, form, "alice", PASSWORD)

    after = session_cookie(browser)
    assert after is not None
    assert after != before


async def test_pre_login_session_id_not_signed_in(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    planted = session_cookie(browser)
    await submit(op, browser, form, "alice", PASSWORD)

    attacker = Browser.open(op.url)
    try:
        attacker.session.cookie_jar.update_cookies({COOKIE: planted})
        signed_in = await is_signed_in(op, attacker)
    finally:
        await attacker.close()

    assert not signed_in


async def test_session_cookie_attributes(op, browser, rp, alice):
    response = await browser.get(authorization_url(op))
    page = await browser.get(op.url + response.headers["Location"])
    form = hidden_inputs(await page.text())
    login = await submit(op, browser, form, "alice", PASSWORD)

    cookies = [c[COOKIE] for c in set_cookies(page) + set_cookies(login) if COOKIE in c]
    assert len(cookies) >= 2
    for cookie in cookies:
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert not cookie["secure"]


# -- single sign-on --


async def test_second_request_skips_form(op, browser, rp, alice):
    first = await browser.authorize(authorization_url(op), "alice", PASSWORD)
    assert "code" in query_of(first.headers["Location"])

    second = await browser.get(authorization_url(op))

    assert second.status == 302
    params = query_of(second.headers["Location"])
    assert "code" in params
    assert params["state"] == "state-7"


async def test_other_browser_not_signed_in(op, browser, rp, alice):
    await browser.authorize(authorization_url(op), "alice", PASSWORD)

    other = Browser.open(op.url)
    try:
        signed_in = await is_signed_in(op, other)
    finally:
        await other.close()

    assert not signed_in


# -- pending requests --


async def test_unknown_request_id_shows_page(op, browser):
    response = await browser.get(op.url + "/login?request=no-such-request")

    assert response.status == 400
    assert response.content_type == "text/html"
    assert "Location" not in response.headers


async def test_used_request_id_shows_page(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    await submit(op, browser, form, "alice", PASSWORD)

    response = await browser.get(op.url + "/login?request=" + form["request"])

    assert response.status == 400
    assert response.content_type == "text/html"


async def test_login_with_unknown_request_id_shows_page(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    form["request"] = "no-such-request"

    response = await submit(op, browser, form, "alice", PASSWORD)

    assert response.status == 400
    assert response.content_type == "text/html"
    assert "Traceback" not in await response.text()


async def test_replayed_login_form_shows_page(op, browser, rp, alice):
    _, form = await open_login_form(op, browser)
    first = await submit(op, browser, form, "alice", PASSWORD)
    assert first.status == 302

    response = await submit(op, browser, form, "alice", PASSWORD)

    assert response.status == 400
    assert response.content_type == "text/html"


# -- non-ASCII credentials --


async def test_non_ascii_username_logs_in(op, browser, rp):
    user = await op.add_user("Jürgen", "pässwörd-ünïcode")

    response = await browser.authorize(
        authorization_url(op), "Jürgen", "pässwörd-ünïcode"
    )

    assert response.status == 302
    assert "code" in query_of(response.headers["Location"])
    assert user.username == "Jürgen"


async def test_decomposed_username_logs_in(op, browser, rp):
    await op.add_user("Jürgen", "pässwörd-ünïcode")
    decomposed = unicodedata.normalize("NFD", "Jürgen")

    response = await browser.authorize(
        authorization_url(op), decomposed, "pässwörd-ünïcode"
    )

    assert response.status == 302
    assert "code" in query_of(response.headers["Location"])


# -- security headers on pages --


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="index"),
        pytest.param("/login?request=no-such-request", id="error-page"),
        pytest.param("/authorization?client_id=nobody", id="unverified-client"),
        pytest.param("/no-such-page", id="not-found"),
    ],
)
async def test_pages_carry_security_headers(op, browser, path):
    response = await browser.get(op.url + path)

    assert response.content_type == "text/html"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_login_page_carries_security_headers(op, browser, rp):
    response = await browser.get(authorization_url(op))
    page = await browser.get(op.url + response.headers["Location"])

    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
