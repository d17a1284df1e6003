"""The logout confirmation, signed-out and cancelled pages over HTTP."""

from __future__ import annotations

import json
from dataclasses import replace

from flows import (
    LOGOUT_URI,
    add_logout_client,
    authorize_status,
    logout_form,
    logout_url,
    sign_in_for_logout,
    sign_in_rp,
)
from yarl import URL

from porchlight_op.store.clients import ClientStore

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


async def post_confirm(browser, op, form, headers=None):
    """Post the confirmation form as its browser would; return the reply and HTML."""
    reply = await browser.session.post(
        op.url + "/logout/confirm", data=form, headers=headers, allow_redirects=False
    )
    return reply, await reply.text()


async def test_confirmation_offers_cancel(op, browser):
    _, _, _ = await sign_in_for_logout(op, browser)

    page, _ = await logout_form(browser, logout_url(op))

    assert 'name="decision" value="logout"' in page
    assert 'name="decision" value="cancel"' in page
    assert ">Cancel</button>" in page
    assert "Do you want to sign out of Porchlight?" in page


async def test_confirmation_names_client(op, browser):
    client, _, _ = await sign_in_for_logout(op, browser)

    page, _ = await logout_form(browser, logout_url(op, client_id=client.client_id))

    assert "Do you want to sign out of Porchlight and rp?" in page


async def test_cancel_keeps_session(op, browser):
    _, rp, token = await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op))
    form["decision"] = "cancel"

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 200
    assert "You are still signed in" in page
    assert "You were not signed out." in page
    assert reply.headers["Cache-Control"] == "no-store"
    assert await authorize_status(browser, rp) == "code"
    userinfo = await rp.userinfo(token["access_token"])
    assert userinfo.status_code == 200


async def test_cancel_does_not_redirect_to_client(op, browser):
    client, rp, _ = await sign_in_for_logout(op, browser)
    url = logout_url(
        op,
        client_id=client.client_id,
        post_logout_redirect_uri=LOGOUT_URI,
        state="abc",
    )
    _, form = await logout_form(browser, url)
    form["decision"] = "cancel"

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 200
    assert "Location" not in reply.headers
    assert "You are still signed in" in page
    assert await authorize_status(browser, rp) == "code"


async def test_cancel_requires_csrf_token(op, browser):
    _, rp, _ = await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op))
    form.update({"decision": "cancel", "csrf_token": "not-the-token"})

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 403
    assert "You are still signed in" not in page
    assert await authorize_status(browser, rp) == "code"


async def test_sign_out_button_signs_out(op, browser):
    _, rp, token = await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op))
    form["decision"] = "logout"

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 200
    assert "You are signed out" in page
    assert await authorize_status(browser, rp) == "login"
    userinfo = await rp.userinfo(token["access_token"])
    assert userinfo.status_code == 401


async def test_confirmation_in_german_by_accept_language(op, browser):
    client, _, _ = await sign_in_for_logout(op, browser)

    page, _ = await logout_form(
        browser, logout_url(op, client_id=client.client_id), GERMAN
    )

    assert '<html lang="de">' in page
    assert "<title>Abmelden · Porchlight</title>" in page
    assert "Möchten Sie sich von Porchlight und rp abmelden?" in page
    assert "Sie werden von allen Anwendungen abgemeldet" in page
    assert ">Abmelden</button>" in page
    assert ">Abbrechen</button>" in page
    assert "Do you want" not in page
    assert "Cancel" not in page


async def test_confirmation_in_german_by_ui_locales(op, browser):
    _, _, _ = await sign_in_for_logout(op, browser)

    page, form = await logout_form(browser, logout_url(op, ui_locales="de en"))

    assert '<html lang="de">' in page
    assert "Möchten Sie sich von Porchlight abmelden?" in page
    assert form["ui_locales"] == "de en"


async def test_signed_out_page_in_german(op, browser):
    _, _, _ = await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op, ui_locales="de"))
    form["decision"] = "logout"

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 200
    assert "<title>Abgemeldet · Porchlight</title>" in page
    assert "Sie sind abgemeldet" in page
    assert "Sie können dieses Fenster schließen" in page
    assert "You can close" not in page


async def test_cancelled_page_in_german(op, browser):
    _, _, _ = await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op), GERMAN)
    form["decision"] = "cancel"

    reply, page = await post_confirm(browser, op, form, GERMAN)

    assert reply.status == 200
    assert "<title>Weiterhin angemeldet · Porchlight</title>" in page
    assert "Sie sind weiterhin angemeldet" in page
    assert "Sie wurden nicht abgemeldet." in page
    assert "still signed in" not in page


async def test_signed_out_page_without_session_in_german(op, browser):
    reply = await browser.session.get(logout_url(op), headers=GERMAN)
    page = await reply.text()

    assert reply.status == 200
    assert "Sie sind abgemeldet" in page
    assert "You are signed out" not in page


async def test_cancel_after_login_ended_reports_signed_out(op, browser):
    await sign_in_for_logout(op, browser)
    _, form = await logout_form(browser, logout_url(op))
    form["decision"] = "cancel"
    cookies = browser.session.cookie_jar.filter_cookies(URL(op.url))
    key = f"{op.settings.cookie_name}_{cookies[op.settings.cookie_name].value}"
    stored = json.loads(await op.redis.get(key))
    stored["session"]["last_seen"] = 0
    await op.redis.set(key, json.dumps(stored))

    reply, page = await post_confirm(browser, op, form)

    assert reply.status == 200
    assert "You are signed out" in page
    assert "still signed in" not in page


async def test_confirmation_escapes_client_name(op, browser):
    client = await add_logout_client(op)
    await ClientStore(op.redis).put(replace(client, name="<b>Evil</b> & Co"))
    await op.add_user()
    await sign_in_rp(op, browser, client)

    page, _ = await logout_form(browser, logout_url(op, client_id=client.client_id))

    assert "Porchlight and &lt;b&gt;Evil&lt;/b&gt; &amp; Co?" in page
    assert "<b>Evil</b>" not in page
