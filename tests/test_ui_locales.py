"""Page language from ui_locales (OIDC Core 3.1.2.1) or Accept-Language."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from support import hidden_inputs

from porchlight_op.web.i18n import negotiate, translate

PASSWORD = "correct horse battery"


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
async def rp(op):
    relying_party = op.rp(await op.add_client("shop", first_party=False))
    await relying_party.discover()
    return relying_party


def url(rp, **extra: str) -> str:
    return rp.authorization_url("openid profile") + "&" + urlencode(extra)


async def login_page(browser, rp, headers=None, **extra: str) -> str:
    response = await browser.get(url(rp, **extra))
    assert response.headers["Location"].startswith("/login")
    page = await browser.session.get(
        browser.base + response.headers["Location"], headers=headers
    )
    assert page.status == 200
    return await page.text()


# -- choosing the locale --


@pytest.mark.parametrize(
    ("ui_locales", "accept_language", "expected"),
    [
        (None, None, "en"),
        ("de", None, "de"),
        ("de-AT", None, "de"),
        ("fr-CA de en", None, "de"),
        ("fr", "de-DE,de;q=0.9", "de"),
        ("en de", None, "en"),
        (None, "fr;q=1, de;q=0.5, en;q=0.8", "en"),
        (None, "de;q=0, en", "en"),
        (None, "de;q=bogus", "en"),
        (None, "*", "en"),
    ],
)
def test_negotiate_locale(ui_locales, accept_language, expected):
    assert negotiate(ui_locales, accept_language) == expected


def test_translate_fills_values():
    text = translate("de", "Signed in as %(username)s.", username="alice")

    assert text == "Angemeldet als alice."


def test_translate_unknown_text_stays_english():
    assert translate("de", "No such sentence") == "No such sentence"


# -- pages --


async def test_login_page_follows_ui_locales(op, browser, rp, alice):
    html = await login_page(browser, rp, ui_locales="de")

    assert '<html lang="de">' in html
    assert "Anmelden" in html
    assert "Benutzername" in html


async def test_login_page_english_by_default(op, browser, rp, alice):
    html = await login_page(browser, rp)

    assert '<html lang="en">' in html
    assert "Username" in html


async def test_login_page_falls_back_to_accept_language(op, browser, rp, alice):
    html = await login_page(
        browser, rp, headers={"Accept-Language": "de-CH, en;q=0.5"}, ui_locales="ja"
    )

    assert "Passwort" in html


async def test_ui_locales_wins_over_accept_language(op, browser, rp, alice):
    html = await login_page(
        browser, rp, headers={"Accept-Language": "de"}, ui_locales="en"
    )

    assert "Password" in html


async def test_failed_login_message_translated(op, browser, rp, alice):
    form = hidden_inputs(await login_page(browser, rp, ui_locales="de"))
    form.update({"username": "alice", "password": "wrong"})

    reply = await browser.post_form(op.url + "/login", form)

    assert "Der Benutzername oder das Passwort ist falsch." in await reply.text()


async def test_consent_page_follows_ui_locales(op, browser, rp, alice):
    response = await browser.authorize(
        url(rp, ui_locales="de"), "alice", PASSWORD, consent=False
    )

    page = await browser.get(op.url + response.headers["Location"])
    html = await page.text()

    assert "Zugriff erlauben" in html
    assert "Ihren Namen, Benutzernamen, Ihr Bild und weitere Profilangaben" in html
    assert "Erlauben" in html
    assert "Ablehnen" in html


async def test_error_page_follows_accept_language(op, browser):
    page = await browser.session.get(
        op.url + "/no-such-page", headers={"Accept-Language": "de"}
    )

    assert page.status == 404
    assert "Unter dieser Adresse gibt es keine Seite." in await page.text()


async def test_unverified_client_page_follows_ui_locales(op, browser):
    query = urlencode({"client_id": "nobody", "ui_locales": "de"})

    page = await browser.get(op.url + "/authorization?" + query)

    assert page.status == 400
    assert "Der Client ist hier nicht registriert." in await page.text()
