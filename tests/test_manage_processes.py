"""Self-service changes made at one process show at another sharing the Redis."""

from __future__ import annotations

from conftest import TEST_ARGON2
from servers import log_in, route_to
from sessions_support import PASSWORD, manage_sign_in
from support import REDIRECT_URI, Browser, RelyingParty, hidden_inputs

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import Client
from porchlight_op.settings import load_settings
from porchlight_op.store.clients import ClientStore

SCOPE = ("openid", "profile", "email")


async def test_profile_edit_seen_by_other_process(redis, redis_server, start_server):
    first = start_server(redis_server)
    second = start_server(redis_server, issuer=first.issuer)
    client = Client(
        client_id="rp-two-workers",
        redirect_uris=(REDIRECT_URI,),
        auth_method="client_secret_basic",
        secret="s3cret-value",
        scope=SCOPE,
        first_party=True,
    )
    await ClientStore(redis).put(client)
    settings = load_settings(environ={}, overrides=TEST_ARGON2)
    await Accounts(redis, settings).create_user("alice", PASSWORD, {"name": "Alice"})
    rp = RelyingParty(first.issuer, client.client_id, client.secret, client.auth_method)
    await rp.discover()
    token = await rp.redeem(await log_in(first, rp, "alice", PASSWORD))
    route_to(rp, second)
    before = await rp.userinfo(token["access_token"])  # fills the claims cache

    browser = Browser.open(first.url)
    try:
        await manage_sign_in(browser, first.url)
        page = await browser.get(first.url + "/manage/profile")
        form = hidden_inputs(await page.text())
        form["name"] = "Alice Liddell"
        saved = await browser.post_form(first.url + "/manage/profile", form)
    finally:
        await browser.close()
    after = await rp.userinfo(token["access_token"])

    assert before.json()["name"] == "Alice"
    assert saved.status == 200
    assert after.status_code == 200
    assert after.json()["name"] == "Alice Liddell"
