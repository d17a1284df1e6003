"""The management area: its own client at the OP, sign-in, password and profile."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from support import REDIRECT_URI, free_port, hidden_inputs, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.app import create_app
from porchlight_op.manage.client import SECRET_NAME
from porchlight_op.settings import ClientSettings, Settings, SettingsError
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore

PASSWORD = "correct horse battery"


async def sign_in(browser, op, username="alice", password=PASSWORD, start="/manage"):
    """Follow the sign-in from `start` and return the Location chain and last reply."""
    chain = []
    reply = await browser.get(op.url + start)
    for _ in range(6):
        if reply.status != 302:
            break
        location = reply.headers["Location"]
        chain.append(location)
        url = location if location.startswith("http") else op.url + location
        if location.startswith("/login"):
            page = await browser.get(url)
            form = hidden_inputs(await page.text())
            form.update({"username": username, "password": password})
            reply = await browser.post_form(op.url + "/login", form)
        elif location.startswith("/manage/credentials"):
            break
        else:
            reply = await browser.get(url)
    return chain, reply


async def form_of(browser, url):
    page = await browser.get(url)
    assert page.status == 200
    return hidden_inputs(await page.text())


async def test_management_client_stored_at_start(op):
    client = await ClientStore(op.redis).get("porchlight-manage")
    assert client is not None
    assert client.first_party
    assert client.auth_method == "client_secret_basic"
    assert client.redirect_uris == (op.url + "/manage/callback",)
    assert client.scope == ("openid", "profile", "email")


async def test_management_secret_stable_across_starts(op, aiohttp_server):
    first = await ClientStore(op.redis).get("porchlight-manage")
    port = free_port()
    await aiohttp_server(create_app(op.settings, op.redis), port=port)
    second = await ClientStore(op.redis).get("porchlight-manage")
    assert first is not None and second is not None
    assert second.secret == first.secret
    stored = await op.redis.get(keys.secret(SECRET_NAME))
    assert stored.decode() == first.secret


async def test_manage_logged_out_goes_to_login(op, browser):
    await op.add_user()
    reply = await browser.get(op.url + "/manage")
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith("/authorization?")
    params = query_of(location)
    assert params["client_id"] == "porchlight-manage"
    assert params["code_challenge_method"] == "S256"
    assert params["state"]
    assert params["nonce"]
    reply = await browser.get(op.url + location)
    assert reply.status == 302
    assert reply.headers["Location"].startswith("/login")


async def test_manage_sign_in_lands_on_credentials(op, browser):
    await op.add_user()
    chain, _ = await sign_in(browser, op)
    assert chain[0].startswith("/authorization?")
    assert chain[1].startswith("/login")
    assert chain[2].startswith(op.url + "/manage/callback?")
    assert chain[-1] == "/manage/credentials"
    page = await browser.get(op.url + "/manage/credentials")
    assert page.status == 200
    assert "A password is set" in await page.text()


async def test_callback_rejects_wrong_state(op, browser):
    await op.add_user()
    reply = await browser.get(op.url + "/manage")
    await browser.get(op.url + reply.headers["Location"])
    page = await browser.get(op.url + "/manage/callback?code=x&state=wrong")
    assert page.status == 400
    assert "does not match" in await page.text()


async def test_callback_access_denied_page(op, browser):
    reply = await browser.get(op.url + "/manage")
    state = query_of(reply.headers["Location"])["state"]
    page = await browser.get(
        op.url + f"/manage/callback?error=access_denied&state={state}"
    )
    assert page.status == 400
    assert "not completed" in await page.text()


async def test_profile_edit_shows_in_userinfo(op, browser):
    await op.add_user()
    external = await op.add_client("rp-external")
    rp = op.rp(external)
    await rp.discover()
    other = type(browser).open(op.url)
    try:
        reply = await other.authorize(rp.authorization_url(), "alice", PASSWORD)
        token = await rp.redeem(reply.headers["Location"])
    finally:
        await other.close()

    await sign_in(browser, op)
    form = await form_of(browser, op.url + "/manage/profile")
    form["name"] = "Alice Pleasance"
    saved = await browser.post_form(op.url + "/manage/profile", form)
    assert saved.status == 200

    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200
    assert info.json()["name"] == "Alice Pleasance"


async def test_password_change_then_login(op, browser):
    await op.add_user()
    await sign_in(browser, op)
    form = await form_of(browser, op.url + "/manage/credentials")
    form.update(
        {
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "new_password_confirm": "a brand new passphrase",
        }
    )
    changed = await browser.post_form(op.url + "/manage/credentials", form)
    assert changed.status == 200

    fresh = type(browser).open(op.url)
    try:
        chain, _ = await sign_in(fresh, op, password="a brand new passphrase")
        assert chain[-1] == "/manage/credentials"
    finally:
        await fresh.close()
    stale = type(browser).open(op.url)
    try:
        chain, reply = await sign_in(stale, op)
        assert chain[-1].startswith("/login")
        assert reply.status == 200
    finally:
        await stale.close()


async def test_password_change_needs_current(op, browser):
    await op.add_user()
    await sign_in(browser, op)
    form = await form_of(browser, op.url + "/manage/credentials")
    form.update(
        {
            "current_password": "not the password",
            "new_password": "a brand new passphrase",
            "new_password_confirm": "a brand new passphrase",
        }
    )
    reply = await browser.post_form(op.url + "/manage/credentials", form)
    assert reply.status == 400


async def test_credentials_form_requires_csrf(op, browser):
    await op.add_user()
    await sign_in(browser, op)
    reply = await browser.post_form(
        op.url + "/manage/credentials",
        {
            "csrf_token": "forged",
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "new_password_confirm": "a brand new passphrase",
        },
    )
    assert reply.status == 403


async def test_profile_form_requires_csrf(op, browser):
    user = await op.add_user()
    await sign_in(browser, op)
    reply = await browser.post_form(op.url + "/manage/profile", {"name": "Mallory"})
    assert reply.status == 403
    stored = await Accounts(op.redis, op.settings).get(user.sub)
    assert stored is not None
    assert stored.claims["name"] == "Alice Liddell"


async def test_manage_pages_need_sign_in(op):
    async with aiohttp.ClientSession() as http:
        reply = await http.get(op.url + "/manage/profile", allow_redirects=False)
    assert reply.status == 302
    assert reply.headers["Location"].startswith("/authorization?")


def test_management_id_clash_rejected():
    clients = {
        "porchlight-manage": ClientSettings(
            client_id="porchlight-manage", redirect_uris=(REDIRECT_URI,), secret="s"
        )
    }
    with pytest.raises(SettingsError, match="management_client_id"):
        Settings(clients=clients)


async def password_form(browser, op, new, confirm):
    form = await form_of(browser, op.url + "/manage/credentials")
    form.update(
        {
            "current_password": PASSWORD,
            "new_password": new,
            "new_password_confirm": confirm,
        }
    )
    return form


async def test_password_change_mismatch_rejected(op, browser):
    await op.add_user()
    await sign_in(browser, op)
    form = await password_form(browser, op, "a brand new passphrase", "something else")
    reply = await browser.post_form(op.url + "/manage/credentials", form)
    assert reply.status == 400
    assert "do not match" in await reply.text()


async def test_password_change_too_short_rejected(op, browser):
    await op.add_user()
    await sign_in(browser, op)
    form = await password_form(browser, op, "short", "short")
    reply = await browser.post_form(op.url + "/manage/credentials", form)
    assert reply.status == 400
    assert "invalid password" in await reply.text()


async def test_profile_invalid_claim_rejected(op, browser):
    user = await op.add_user()
    await sign_in(browser, op)
    form = await form_of(browser, op.url + "/manage/profile")
    form["picture"] = "not a url"
    reply = await browser.post_form(op.url + "/manage/profile", form)
    assert reply.status == 400
    stored = await Accounts(op.redis, op.settings).get(user.sub)
    assert stored is not None
    assert "picture" not in stored.claims


async def test_callback_failed_redemption_page(op, browser):
    await op.add_user()
    store = ClientStore(op.redis)
    client = await store.get("porchlight-manage")
    assert client is not None
    await store.put(dataclasses.replace(client, secret="a-different-secret"))
    chain, reply = await sign_in(browser, op)
    assert chain[-1].startswith(op.url + "/manage/callback?")
    assert reply.status == 400
    assert "could not be completed" in await reply.text()


async def test_profile_form_labels_claims_in_words(op, browser):
    await op.add_user()
    await sign_in(browser, op)

    page = await browser.get(op.url + "/manage/profile")
    text = await page.text()

    assert '<label for="given_name">Given name</label>' in text
    assert 'type="email"' in text
    assert 'autocomplete="given-name"' in text


async def test_profile_form_labels_in_german(op, browser):
    await op.add_user()
    await sign_in(browser, op)

    async with browser.session.get(
        op.url + "/manage/profile", headers={"Accept-Language": "de"}
    ) as page:
        text = await page.text()

    assert '<label for="given_name">Vorname</label>' in text
