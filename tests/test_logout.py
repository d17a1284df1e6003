"""RP-Initiated Logout 1.0 over HTTP: the end_session endpoint and its effects."""

from __future__ import annotations

import asyncio
import time

import httpx
from cryptojwt import KeyJar
from cryptojwt.jwt import JWT
from flows import (
    LOGOUT_URI,
    PASSWORD,
    add_logout_client,
    authorize_status,
    introspect,
    logout_url,
    refresh,
    sign_in_for_logout,
    sign_in_rp,
)
from support import Browser, hidden_inputs, query_of

from porchlight_op import cli
from porchlight_op.models import Client
from porchlight_op.settings import load_settings
from porchlight_op.store.clients import ClientStore


async def refresh_error(op, client, refresh_token):
    reply = await refresh(op, client, refresh_token)
    return reply.status_code, reply.json().get("error")


async def test_discovery_lists_logout_endpoints(op):
    async with httpx.AsyncClient() as http:
        reply = await http.get(op.url + "/.well-known/openid-configuration")
    metadata = reply.json()

    assert metadata["end_session_endpoint"] == op.url + "/logout"
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


async def test_logout_with_hint_redirects_with_state(op, browser):
    _, rp, token = await sign_in_for_logout(op, browser)

    reply = await browser.get(
        logout_url(
            op,
            id_token_hint=token["id_token"],
            post_logout_redirect_uri=LOGOUT_URI,
            state="st-123",
            ui_locales="fr",
        )
    )

    assert reply.status == 302
    assert reply.headers["Location"] == LOGOUT_URI + "?state=st-123"
    assert await authorize_status(browser, rp) == "login"


async def test_logout_by_post_form(op, browser):
    _, rp, token = await sign_in_for_logout(op, browser)

    reply = await browser.post_form(
        op.url + "/logout",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": LOGOUT_URI},
    )

    assert reply.status == 302
    assert reply.headers["Location"] == LOGOUT_URI
    assert await authorize_status(browser, rp) == "login"


async def test_logout_rejects_unregistered_redirect_uri(op, browser):
    _, rp, token = await sign_in_for_logout(op, browser)

    reply = await browser.get(
        logout_url(
            op,
            id_token_hint=token["id_token"],
            post_logout_redirect_uri="http://127.0.0.1:9000/elsewhere",
        )
    )

    assert reply.status == 400
    assert reply.content_type == "text/html"
    assert "Location" not in reply.headers
    assert "not registered" in await reply.text()
    assert await authorize_status(browser, rp) == "code"


async def test_logout_rejects_redirect_uri_without_client(op, browser):
    reply = await browser.get(logout_url(op, post_logout_redirect_uri=LOGOUT_URI))

    assert reply.status == 400
    assert "Location" not in reply.headers


async def test_logout_rejects_forged_hint(op, browser):
    _, _, token = await sign_in_for_logout(op, browser)
    header, payload, signature = token["id_token"].split(".")
    forged = ".".join([header, payload, signature[:-4] + "AAAA"])

    reply = await browser.get(logout_url(op, id_token_hint=forged))

    assert reply.status == 400
    assert "id_token_hint is invalid" in await reply.text()


async def test_logout_rejects_hint_for_other_client(op, browser):
    client = await add_logout_client(op)
    await add_logout_client(op, "other-rp")
    await op.add_user()
    _, token = await sign_in_rp(op, browser, client)

    reply = await browser.get(
        logout_url(op, id_token_hint=token["id_token"], client_id="other-rp")
    )

    assert reply.status == 400
    assert "Location" not in reply.headers


async def test_logout_accepts_expired_hint(op, browser, signing_jwks):
    client = await add_logout_client(op)
    user = await op.add_user()
    rp, _ = await sign_in_rp(op, browser, client)
    keyjar = KeyJar()
    keyjar.import_jwks_as_json(signing_jwks.decode(), op.url)
    signer = JWT(keyjar, iss=op.url, lifetime=60, sign_alg="RS256")
    expired = signer.pack(
        {"sub": user.sub}, recv=client.client_id, iat=int(time.time()) - 3600
    )

    reply = await browser.get(
        logout_url(op, id_token_hint=expired, post_logout_redirect_uri=LOGOUT_URI)
    )

    assert reply.status == 302
    assert reply.headers["Location"] == LOGOUT_URI
    assert await authorize_status(browser, rp) == "login"


async def test_logout_without_hint_asks_to_confirm(op, browser):
    client, rp, _ = await sign_in_for_logout(op, browser)

    reply = await browser.get(
        logout_url(op, client_id=client.client_id, post_logout_redirect_uri=LOGOUT_URI)
    )
    page = await reply.text()

    assert reply.status == 200
    assert 'action="/logout/confirm"' in page
    assert "<script" not in page
    assert hidden_inputs(page)["csrf_token"]
    assert await authorize_status(browser, rp) == "code"


async def test_logout_with_other_users_hint_asks_to_confirm(op, browser):
    client = await add_logout_client(op)
    await op.add_user()
    await op.add_user("bob")
    _, bob_token = await sign_in_rp(op, browser, client, "bob")
    alice_browser = Browser.open(op.url)
    try:
        rp = op.rp(client)
        await rp.discover()
        await alice_browser.authorize(rp.authorization_url(), "alice", PASSWORD)

        reply = await alice_browser.get(
            logout_url(op, id_token_hint=bob_token["id_token"])
        )

        assert reply.status == 200
        assert 'action="/logout/confirm"' in await reply.text()
        assert await authorize_status(alice_browser, rp) == "code"
    finally:
        await alice_browser.close()


async def test_confirmation_logs_out_and_redirects(op, browser):
    client, rp, _ = await sign_in_for_logout(op, browser)
    page = await browser.get(
        logout_url(
            op,
            client_id=client.client_id,
            post_logout_redirect_uri=LOGOUT_URI,
            state="abc",
        )
    )
    form = hidden_inputs(await page.text())

    reply = await browser.post_form(op.url + "/logout/confirm", form)

    assert reply.status == 302
    assert query_of(reply.headers["Location"]) == {"state": "abc"}
    assert await authorize_status(browser, rp) == "login"


async def test_confirmation_rejects_wrong_csrf_token(op, browser):
    _, rp, _ = await sign_in_for_logout(op, browser)
    page = await browser.get(logout_url(op))
    form = hidden_inputs(await page.text())
    form["csrf_token"] = "not-the-token"

    reply = await browser.post_form(op.url + "/logout/confirm", form)

    assert reply.status == 403
    assert await authorize_status(browser, rp) == "code"


async def test_confirmation_without_redirect_shows_page(op, browser):
    _, rp, _ = await sign_in_for_logout(op, browser)
    page = await browser.get(logout_url(op))
    form = hidden_inputs(await page.text())

    reply = await browser.post_form(op.url + "/logout/confirm", form)

    assert reply.status == 200
    assert "You are signed out" in await reply.text()
    assert await authorize_status(browser, rp) == "login"


async def test_logout_revokes_session_tokens(op, browser):
    client, rp, token = await sign_in_for_logout(op, browser)

    await browser.get(logout_url(op, id_token_hint=token["id_token"]))

    userinfo = await rp.userinfo(token["access_token"])
    assert userinfo.status_code == 401
    assert await refresh_error(op, client, token["refresh_token"]) == (
        400,
        "invalid_grant",
    )


async def test_logout_keeps_other_browser_session(op, browser):
    client, _, token = await sign_in_for_logout(op, browser)
    other = Browser.open(op.url)
    try:
        other_rp, other_token = await sign_in_rp(op, other, client)

        await browser.get(logout_url(op, id_token_hint=token["id_token"]))

        userinfo = await other_rp.userinfo(other_token["access_token"])
        assert userinfo.status_code == 200
        refreshed = await other_rp.refresh(other_token["refresh_token"])
        assert "access_token" in refreshed
        assert await authorize_status(other, other_rp) == "code"
    finally:
        await other.close()


async def test_id_token_sid_is_login_session_id(op, browser):
    client = await add_logout_client(op)
    second = await add_logout_client(op, "second-rp")
    await op.add_user()
    rp, token = await sign_in_rp(op, browser, client)
    second_rp, second_token = await sign_in_rp(op, browser, second)

    claims = await rp.validate_id_token(token["id_token"])
    second_claims = await second_rp.validate_id_token(second_token["id_token"])
    refreshed = await rp.refresh(token["refresh_token"])
    refreshed_claims = await rp.validate_id_token(refreshed["id_token"])

    assert len(claims["sid"]) == 22
    assert second_claims["sid"] == claims["sid"]
    assert refreshed_claims["sid"] == claims["sid"]


async def test_logout_without_session_redirects(op, browser):
    client = await add_logout_client(op)

    reply = await browser.get(
        logout_url(
            op,
            client_id=client.client_id,
            post_logout_redirect_uri=LOGOUT_URI,
            state="s",
        )
    )

    assert reply.status == 302
    assert reply.headers["Location"] == LOGOUT_URI + "?state=s"


async def test_cli_registers_logout_uris(redis, redis_server, monkeypatch, capsys):
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    argv = [
        "client", "add", "web",
        "--redirect-uri", "https://rp.example/cb",
        "--post-logout-redirect-uri", "https://rp.example/bye",
        "--post-logout-redirect-uri", "https://rp.example/later",
        "--backchannel-logout-uri", "https://rp.example/backchannel",
        "--backchannel-logout-session-required",
    ]  # fmt: skip

    code = await asyncio.to_thread(cli.main, argv)
    capsys.readouterr()
    client = await ClientStore(redis).get("web")

    assert code == 0
    assert client.post_logout_redirect_uris == (
        "https://rp.example/bye",
        "https://rp.example/later",
    )
    assert client.backchannel_logout_uri == "https://rp.example/backchannel"
    assert client.backchannel_logout_session_required is True


async def test_cli_rejects_non_http_backchannel_uri(redis_server, monkeypatch, capsys):
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    argv = [
        "client", "add", "web",
        "--redirect-uri", "https://rp.example/cb",
        "--backchannel-logout-uri", "ftp://rp.example/backchannel",
    ]  # fmt: skip

    code = await asyncio.to_thread(cli.main, argv)

    assert code == 2
    assert "clients.web.backchannel_logout_uri" in capsys.readouterr().err


def test_config_file_registers_logout_uris(tmp_path):
    path = tmp_path / "porchlight.toml"
    path.write_text(
        "[clients.web]\n"
        'redirect_uris = ["https://rp.example/cb"]\n'
        'secret = "a-long-client-secret"\n'
        'post_logout_redirect_uris = ["https://rp.example/bye"]\n'
        'backchannel_logout_uri = "https://rp.example/backchannel"\n'
        "backchannel_logout_session_required = true\n"
    )

    client = load_settings(path, environ={}).clients["web"]

    assert client.post_logout_redirect_uris == ("https://rp.example/bye",)
    assert client.backchannel_logout_uri == "https://rp.example/backchannel"
    assert client.backchannel_logout_session_required is True


def test_client_record_without_logout_fields_loads():
    record = (
        '{"client_id":"old","redirect_uris":["https://rp.example/cb"],'
        '"auth_method":"none","secret":null,"scope":["openid"],'
        '"name":"","created_at":1}'
    )

    client = Client.from_json(record)

    assert client.post_logout_redirect_uris == ()
    assert client.backchannel_logout_uri is None
    assert client.backchannel_logout_session_required is False
    assert Client.from_json(client.to_json()) == client


async def test_logout_makes_introspection_inactive(op, browser):
    client, _, token = await sign_in_for_logout(op, browser)
    before = (await introspect(op, client, token["access_token"])).json()

    await browser.get(logout_url(op, id_token_hint=token["id_token"]))
    after_access = (await introspect(op, client, token["access_token"])).json()
    after_refresh = (await introspect(op, client, token["refresh_token"])).json()

    assert before["active"] is True
    assert after_access == {"active": False}
    assert after_refresh == {"active": False}
