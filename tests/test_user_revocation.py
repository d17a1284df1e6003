"""Disabling or removing a user ends every login, grant and consent at once."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import pytest
from aiohttp import web
from conftest import TEST_ARGON2
from sessions_support import (
    PASSWORD,
    introspect,
    manage_sign_in,
    needs_login,
    refresh,
    rp_sign_in,
    userinfo,
)
from support import REDIRECT_URI, Browser, basic_auth, free_port

from porchlight_op import cli
from porchlight_op.accounts.service import Accounts
from porchlight_op.models import Client
from porchlight_op.settings import load_settings
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.user_logins import LoginEntry, UserLogins
from porchlight_op.store.user_revocation import UserRevocation

SCOPE = ("openid", "profile", "email", "offline_access")
DELIVERY_WAIT = 10.0  # seconds a test waits for a back-channel logout token


def accounts(op) -> Accounts:
    return Accounts(op.redis, op.settings)


async def add_client(op, client_id: str, **fields: Any) -> Client:
    """Register a first-party confidential client with extra fields."""
    client = Client(
        client_id=client_id,
        redirect_uris=(REDIRECT_URI,),
        auth_method="client_secret_basic",
        secret="s3cret-value",
        scope=SCOPE,
        first_party=True,
        **fields,
    )
    await ClientStore(op.redis).put(client)
    return client


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


@pytest.fixture
async def second(op):
    """A second browser of the same user, with its own cookie jar."""
    instance = Browser.open(op.url)
    yield instance
    await instance.close()


async def test_disable_kills_refresh_token(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)

    await accounts(op).set_disabled(user.sub, True)
    reply = await refresh(op.url, client, token["refresh_token"])

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"


async def test_disable_kills_access_token(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)

    await accounts(op).set_disabled(user.sub, True)
    reply = await userinfo(op.url, token["access_token"])

    assert reply.status_code == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


async def test_disable_kills_opaque_access_token(op, browser):
    user = await op.add_user()
    client = await add_client(op, "rp-opaque", access_token_format="opaque")
    _, token = await rp_sign_in(op.url, browser, client)
    assert token["access_token"].count(".") == 0

    await accounts(op).set_disabled(user.sub, True)

    assert (await userinfo(op.url, token["access_token"])).status_code == 401
    assert await introspect(op.url, client, token["access_token"]) == {"active": False}


async def test_disable_makes_introspection_inactive(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    before = await introspect(op.url, client, token["access_token"])
    assert before["active"] is True

    await accounts(op).set_disabled(user.sub, True)

    assert await introspect(op.url, client, token["access_token"]) == {"active": False}
    assert await introspect(op.url, client, token["refresh_token"]) == {"active": False}


async def test_disable_ends_every_browser_session(op, browser, second):
    user = await op.add_user()
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)

    await accounts(op).set_disabled(user.sub, True)

    assert await needs_login(browser, op.url)
    assert await needs_login(second, op.url)
    assert not await op.redis.exists(keys.user_logins(user.sub))


async def test_disable_ends_session_on_touch(op, browser):
    user = await op.add_user()
    await manage_sign_in(browser, op.url)
    # Age the browser session so its next request refreshes the idle timer,
    # which checks the login with the touch script instead of HEXISTS.
    (session_key,) = await op.redis.keys(op.settings.cookie_name + "_*")
    stored = json.loads(await op.redis.get(session_key))
    stored["session"]["last_seen"] = int(time.time()) - 120
    await op.redis.set(session_key, json.dumps(stored), keepttl=True)

    await accounts(op).set_disabled(user.sub, True)

    assert await needs_login(browser, op.url)


async def test_disable_removes_consents(op, browser):
    user = await op.add_user()
    one = await op.add_client("rp-one")
    two = await op.add_client("rp-two")
    await rp_sign_in(op.url, browser, one)
    await rp_sign_in(op.url, browser, two)
    assert await op.redis.exists(keys.consent(user.sub, "rp-one"))

    await accounts(op).set_disabled(user.sub, True)

    assert not await op.redis.exists(keys.consent(user.sub, "rp-one"))
    assert not await op.redis.exists(keys.consent(user.sub, "rp-two"))


async def test_disable_deletes_session_tree(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)

    await accounts(op).set_disabled(user.sub, True)
    left = await op.redis.keys(keys.session_prefix(user.sub) + "*")
    login_sets = await op.redis.keys(f"pl:{{{user.sub}}}:ls:*")

    assert left == []
    assert login_sets == []


async def test_disable_keeps_other_users_tokens(op, browser, second):
    alice = await op.add_user()
    await op.add_user("bob")
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    _, bob_token = await rp_sign_in(op.url, second, client, username="bob")

    await accounts(op).set_disabled(alice.sub, True)

    assert (await userinfo(op.url, bob_token["access_token"])).status_code == 200
    assert (await refresh(op.url, client, bob_token["refresh_token"])).status_code == (
        200
    )


async def test_disable_keeps_client_credentials_token(op):
    user = await op.add_user()
    client = await add_client(
        op,
        "service",
        grant_types=("authorization_code", "refresh_token", "client_credentials"),
    )
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            op.url + "/token",
            data={"grant_type": "client_credentials", "scope": "profile"},
            headers={"Authorization": basic_auth(client.client_id, client.secret)},
        )
    access_token = reply.json()["access_token"]

    await accounts(op).set_disabled(user.sub, True)

    assert (await introspect(op.url, client, access_token))["active"] is True


async def test_reenabled_user_signs_in_again(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    await accounts(op).set_disabled(user.sub, True)

    await accounts(op).set_disabled(user.sub, False)
    _, token = await rp_sign_in(op.url, browser, client)

    assert (await userinfo(op.url, token["access_token"])).status_code == 200


async def test_remove_kills_tokens_and_sessions(op, browser, second):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    await manage_sign_in(second, op.url)

    assert await accounts(op).remove(user.sub)

    assert (await userinfo(op.url, token["access_token"])).status_code == 401
    assert (await refresh(op.url, client, token["refresh_token"])).json()[
        "error"
    ] == "invalid_grant"
    assert await introspect(op.url, client, token["access_token"]) == {"active": False}
    assert await needs_login(browser, op.url)
    assert await needs_login(second, op.url)
    assert await op.redis.keys(f"pl:{{{user.sub}}}:*") == []


async def test_cli_user_remove_revokes(op, browser, redis_server, monkeypatch, capsys):
    await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)

    code = await asyncio.to_thread(cli.main, ["user", "remove", "alice"])
    capsys.readouterr()

    assert code == 0
    assert (await refresh(op.url, client, token["refresh_token"])).status_code == 400
    assert await needs_login(browser, op.url)


# -- back-channel logout --


class Receiver:
    """A relying party's back-channel logout endpoint that records each token."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.tokens.append(str(form["logout_token"]))
        self.arrived.set()
        return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def start_receiver(aiohttp_server: Any, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/backchannel", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    return str(server.make_url("/backchannel"))


async def test_disable_sends_backchannel_logout(op, browser, aiohttp_server):
    user = await op.add_user()
    receiver = Receiver()
    uri = await start_receiver(aiohttp_server, receiver)
    client = await add_client(op, "rp-bc", backchannel_logout_uri=uri)
    rp, token = await rp_sign_in(op.url, browser, client)
    sid = (await rp.validate_id_token(token["id_token"]))["sid"]

    await accounts(op).set_disabled(user.sub, True)
    await asyncio.wait_for(receiver.arrived.wait(), DELIVERY_WAIT)

    claims = unverified_claims(receiver.tokens[0])
    assert claims["sub"] == user.sub
    assert claims["sid"] == sid
    assert claims["aud"] == ["rp-bc"]


async def test_grant_without_login_gets_sub_only_logout(op, browser, aiohttp_server):
    user = await op.add_user()
    receiver = Receiver()
    uri = await start_receiver(aiohttp_server, receiver)
    client = await add_client(op, "rp-bc", backchannel_logout_uri=uri)
    await rp_sign_in(op.url, browser, client)
    # The login expired, but its refresh token lives on.
    await op.redis.delete(keys.user_logins(user.sub))

    await accounts(op).set_disabled(user.sub, True)
    await asyncio.wait_for(receiver.arrived.wait(), DELIVERY_WAIT)

    claims = unverified_claims(receiver.tokens[0])
    assert claims["sub"] == user.sub
    assert "sid" not in claims


# -- another process --


async def test_disable_seen_by_other_process(redis, redis_server, start_server):
    server = start_server(redis_server)
    store = ClientStore(redis)
    client = Client(
        client_id="rp-one",
        redirect_uris=(REDIRECT_URI,),
        auth_method="client_secret_basic",
        secret="s3cret-value",
        scope=SCOPE,
        first_party=True,
    )
    await store.put(client)
    service = Accounts(redis, load_settings(environ={}, overrides=TEST_ARGON2))
    user = await service.create_user("alice", PASSWORD)
    browser = Browser.open(server.url)
    try:
        _, token = await rp_sign_in(server.issuer, browser, client)
        await manage_sign_in(browser, server.url)

        await service.set_disabled(user.sub, True)

        assert (await userinfo(server.url, token["access_token"])).status_code == 401
        assert (await refresh(server.url, client, token["refresh_token"])).json()[
            "error"
        ] == "invalid_grant"
        assert await introspect(server.url, client, token["access_token"]) == {
            "active": False
        }
        assert await needs_login(browser, server.url)
    finally:
        await browser.close()


# -- the login index in Redis --


async def test_touch_of_removed_login_is_false(redis):
    logins = UserLogins(redis, max_age=3600, idle_timeout=600)
    now = int(time.time())
    entry = LoginEntry("sid-1", now, now, ("pwd",), "Firefox on Linux", "127.0.0.1")
    await logins.add("lusab-babad", entry)

    assert await logins.touch("lusab-babad", "sid-1", now + 60)
    assert (await logins.entries("lusab-babad"))[0].last_seen == now + 60
    assert await logins.remove("lusab-babad", "sid-1")
    assert not await logins.touch("lusab-babad", "sid-1", now + 120)
    assert not await redis.hexists(keys.user_logins("lusab-babad"), "sid-1")


async def test_entries_drop_expired_logins(redis):
    logins = UserLogins(redis, max_age=3600, idle_timeout=600)
    now = int(time.time())
    live = LoginEntry("live", now, now, ("pwd",), "", "")
    idle = LoginEntry("idle", now - 1000, now - 700, ("pwd",), "", "")
    old = LoginEntry("old", now - 4000, now, ("pwd",), "", "")
    for entry in (live, idle, old):
        await logins.add("lusab-babad", entry)

    listed = await logins.entries("lusab-babad")

    assert [entry.sid for entry in listed] == ["live"]
    assert await redis.hkeys(keys.user_logins("lusab-babad")) == [b"live"]


async def test_revoke_everything_without_state_is_harmless(redis):
    revoked = await UserRevocation(redis).revoke_everything("lusab-babad")

    assert revoked.logins == 0
    assert revoked.grants == 0
    assert revoked.backchannel_queued == 0


async def test_cli_user_disable_revokes(op, browser, redis_server, monkeypatch, capsys):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)

    code = await asyncio.to_thread(cli.main, ["user", "disable", "alice"])
    output = capsys.readouterr().out
    stored = await accounts(op).get(user.sub)

    assert code == 0
    assert f"disabled user alice ({user.sub})" in output
    assert stored is not None and stored.disabled
    assert (await userinfo(op.url, token["access_token"])).status_code == 401
    assert (await refresh(op.url, client, token["refresh_token"])).status_code == 400


async def test_cli_user_enable_allows_login(op, browser, redis_server, monkeypatch):
    user = await op.add_user()
    await accounts(op).set_disabled(user.sub, True)
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)

    code = await asyncio.to_thread(cli.main, ["user", "enable", user.sub])
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)

    assert code == 0
    assert (await userinfo(op.url, token["access_token"])).status_code == 200
