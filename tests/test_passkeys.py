"""Passkeys over HTTP: login, registration, management and every rejection.

A software authenticator (tests/webauthn_authenticator.py) makes real
attestation and assertion objects, which the OP verifies with py_webauthn.
The OP runs at http://127.0.0.1:<port>, so the rp id is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from admin_support import add_admin, post, sign_in_admin
from conftest import OP, TEST_ARGON2
from support import Browser, hidden_inputs, query_of
from test_cluster import cluster, cluster_url  # noqa: F401 - Redis Cluster fixtures
from webauthn_authenticator import (
    SoftAuthenticator,
    SoftCredential,
    b64url,
    b64url_decode,
)

from porchlight_op.accounts.passkeys import (
    ADD,
    PasskeyCeremonies,
    RelyingPartyIdentity,
)
from porchlight_op.accounts.service import Accounts
from porchlight_op.models import User
from porchlight_op.settings import load_settings
from porchlight_op.store import keys
from porchlight_op.store.invitations import InvitationStore
from porchlight_op.store.passkeys import PasskeyStore, SignCountNotIncreased
from porchlight_op.web.keys import WEBAUTHN

PASSWORD = "correct horse battery"
SCOPE = "openid profile email"
TEST_SETTINGS = load_settings(environ={}, overrides=TEST_ARGON2)


# -- helpers --


async def enrol(op: OP, user: User, authenticator: SoftAuthenticator) -> SoftCredential:
    """Register a passkey for the user through the OP's ceremony code."""
    ceremonies = op.app[WEBAUTHN]
    ceremony_id, options = await ceremonies.registration_options(
        ADD, user.sub, user.username
    )
    reply, credential = authenticator.create(options)
    ceremony = await ceremonies.take(ceremony_id, ADD)
    passkey = ceremonies.verify_registration(ceremony, reply, "laptop")
    await ceremonies.store.add(user.sub, passkey)
    return credential


async def post_json(
    browser: Browser, url: str, csrf: str | None, body: dict[str, Any] | None = None
) -> aiohttp.ClientResponse:
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    response = await browser.session.post(
        url, json=body or {}, headers=headers, allow_redirects=False
    )
    await response.read()
    return response


async def login_page(browser: Browser, op: OP, rp_url: str | None) -> dict[str, str]:
    """Open the login page (for an RP's request if given); return its form fields."""
    if rp_url is None:
        page = await browser.get(op.url + "/login")
    else:
        start = await browser.get(rp_url)
        assert start.status == 302
        page = await browser.get(op.url + start.headers["Location"])
    assert page.status == 200
    return hidden_inputs(await page.text())


async def login_options(browser: Browser, op: OP, form: dict[str, str]) -> dict:
    reply = await post_json(
        browser, op.url + "/login/passkey/options", form["csrf_token"]
    )
    assert reply.status == 200
    return await reply.json()


async def submit_login(
    browser: Browser, op: OP, form: dict[str, str], ceremony: str, credential: dict
) -> aiohttp.ClientResponse:
    data = {
        "csrf_token": form["csrf_token"],
        "request": form.get("request", ""),
        "ceremony": ceremony,
        "credential": json.dumps(credential),
    }
    return await browser.post_form(op.url + "/login/passkey", data)


async def passkey_login(
    browser: Browser,
    op: OP,
    authenticator: SoftAuthenticator,
    credential: SoftCredential,
    rp_url: str | None = None,
    **bend: Any,
) -> aiohttp.ClientResponse:
    """Run a whole passkey login; `bend` changes the authenticator's response."""
    form = await login_page(browser, op, rp_url)
    options = await login_options(browser, op, form)
    reply = authenticator.get(options["publicKey"], credential, **bend)
    return await submit_login(browser, op, form, options["ceremony"], reply)


@pytest.fixture
async def alice(op: OP) -> User:
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
def authenticator(op: OP) -> SoftAuthenticator:
    return SoftAuthenticator(op.url)


async def stored_count(op: OP, user: User) -> int:
    """Return the stored counter of the user's only passkey."""
    (passkey,) = await PasskeyStore(op.redis).list(user.sub)
    return passkey.sign_count


async def sign_in_manage(
    browser: Browser,
    op: OP,
    authenticator: SoftAuthenticator,
    credential: SoftCredential,
) -> None:
    """Sign in to /manage with a passkey and land on /manage/credentials."""
    reply = await browser.get(op.url + "/manage")
    for _ in range(6):
        assert reply.status == 302, await reply.text()
        location = reply.headers["Location"]
        if location.startswith("/manage/credentials"):
            return
        if location.startswith("/login"):
            page = await browser.get(op.url + location)
            form = hidden_inputs(await page.text())
            options = await login_options(browser, op, form)
            answer = authenticator.get(options["publicKey"], credential)
            reply = await submit_login(browser, op, form, options["ceremony"], answer)
        else:
            url = location if location.startswith("http") else op.url + location
            reply = await browser.get(url)
    raise AssertionError("the management sign-in did not finish")


async def sign_in_manage_with_password(browser: Browser, op: OP, username: str) -> None:
    reply = await browser.get(op.url + "/manage")
    for _ in range(6):
        location = reply.headers["Location"]
        if location.startswith("/manage/credentials"):
            return
        if location.startswith("/login"):
            page = await browser.get(op.url + location)
            form = hidden_inputs(await page.text())
            form.update({"username": username, "password": PASSWORD})
            reply = await browser.post_form(op.url + "/login", form)
        else:
            url = location if location.startswith("http") else op.url + location
            reply = await browser.get(url)
    raise AssertionError("the management sign-in did not finish")


async def credentials_form(browser: Browser, op: OP) -> tuple[str, dict[str, str]]:
    page = await browser.get(op.url + "/manage/credentials")
    assert page.status == 200
    text = await page.text()
    return text, hidden_inputs(text)


async def add_passkey_over_http(
    browser: Browser, op: OP, authenticator: SoftAuthenticator, name: str = "phone"
) -> tuple[aiohttp.ClientResponse, SoftCredential]:
    _, form = await credentials_form(browser, op)
    options = await post_json(
        browser, op.url + "/manage/credentials/passkeys/options", form["csrf_token"]
    )
    assert options.status == 200
    data = await options.json()
    reply, credential = authenticator.create(data["publicKey"])
    result = await browser.post_form(
        op.url + "/manage/credentials/passkeys",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
            "name": name,
        },
    )
    return result, credential


# -- login through an RP --


async def test_passkey_login_gives_amr_hwk_user(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    client = await op.add_client("rp")
    rp = op.rp(client)
    await rp.discover()

    reply = await passkey_login(
        browser, op, authenticator, credential, rp.authorization_url(SCOPE)
    )

    assert reply.status == 302
    location = reply.headers["Location"]
    assert query_of(location)["state"] == rp.state
    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == alice.sub
    assert claims["amr"] == ["hwk", "user"]


async def test_passkey_login_without_uv_gives_amr_hwk(
    op, browser, alice, authenticator
):
    credential = await enrol(op, alice, authenticator)
    client = await op.add_client("rp")
    rp = op.rp(client)
    await rp.discover()

    reply = await passkey_login(
        browser,
        op,
        authenticator,
        credential,
        rp.authorization_url(SCOPE),
        user_verified=False,
    )

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["amr"] == ["hwk"]


async def test_password_login_keeps_amr_pwd(op, browser, alice):
    client = await op.add_client("rp")
    rp = op.rp(client)
    await rp.discover()

    reply = await browser.authorize(rp.authorization_url(SCOPE), "alice", PASSWORD)

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["amr"] == ["pwd"]


async def test_passkey_login_stores_counter_and_last_use(
    op, browser, alice, authenticator
):
    credential = await enrol(op, alice, authenticator)

    reply = await passkey_login(browser, op, authenticator, credential)

    assert reply.status == 200
    assert "You are signed in" in await reply.text()
    (passkey,) = await PasskeyStore(op.redis).list(alice.sub)
    assert passkey.sign_count == credential.sign_count
    assert passkey.last_used_at is not None


async def test_login_options_offer_discoverable_login(op, browser):
    form = await login_page(browser, op, None)

    options = await login_options(browser, op, form)

    assert options["publicKey"]["rpId"] == "127.0.0.1"
    assert options["publicKey"]["userVerification"] == "preferred"
    assert options["publicKey"].get("allowCredentials", []) == []


async def test_ceremony_challenge_expires_in_minutes(op, browser):
    form = await login_page(browser, op, None)

    options = await login_options(browser, op, form)

    ttl = await op.redis.ttl(keys.webauthn_ceremony(options["ceremony"]))
    assert 0 < ttl <= 300


# -- login rejections --


async def assert_login_rejected(reply: aiohttp.ClientResponse, message: str) -> None:
    assert reply.status == 400
    text = await reply.text()
    assert message in text
    assert "Sign in" in text


async def test_login_rejects_wrong_origin(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)

    reply = await passkey_login(
        browser, op, authenticator, credential, origin="http://evil.localhost:1"
    )

    await assert_login_rejected(reply, "could not be verified")
    assert await stored_count(op, alice) == 0


async def test_login_rejects_wrong_rp_id_hash(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)

    reply = await passkey_login(
        browser, op, authenticator, credential, rp_id="example.org"
    )

    await assert_login_rejected(reply, "could not be verified")


async def test_login_rejects_replayed_challenge(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    form = await login_page(browser, op, None)
    options = await login_options(browser, op, form)
    first = await submit_login(
        browser,
        op,
        form,
        options["ceremony"],
        authenticator.get(options["publicKey"], credential),
    )
    # The CSRF token survives the login, so the same form can be posted again.
    second = await submit_login(
        browser,
        op,
        form,
        options["ceremony"],
        authenticator.get(options["publicKey"], credential),
    )

    assert first.status == 200
    await assert_login_rejected(second, "has expired")


async def test_login_rejects_unknown_ceremony(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    form = await login_page(browser, op, None)
    options = await login_options(browser, op, form)
    await op.redis.delete(keys.webauthn_ceremony(options["ceremony"]))

    reply = await submit_login(
        browser,
        op,
        form,
        options["ceremony"],
        authenticator.get(options["publicKey"], credential),
    )

    await assert_login_rejected(reply, "has expired")


async def test_login_rejects_unknown_credential(op, browser, authenticator):
    stranger = SoftAuthenticator(op.url)
    options = {"rp": {"id": "127.0.0.1"}, "user": {"id": "AA"}, "challenge": "AA"}
    _, credential = stranger.create(options)

    reply = await passkey_login(browser, op, stranger, credential)

    await assert_login_rejected(reply, "not registered here")


async def test_login_rejects_counter_not_increased(
    op, browser, alice, authenticator, caplog
):
    credential = await enrol(op, alice, authenticator)
    await passkey_login(browser, op, authenticator, credential)
    used = credential.sign_count
    caplog.set_level(logging.WARNING, logger="porchlight_op.accounts")

    fresh = Browser.open(op.url)
    try:
        reply = await passkey_login(
            fresh, op, authenticator, credential, sign_count=used
        )
    finally:
        await fresh.close()

    await assert_login_rejected(reply, "counter went backwards")
    assert await stored_count(op, alice) == used
    assert "possible cloned authenticator" in caplog.text


async def test_store_rejects_lower_counter(op, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    store = PasskeyStore(op.redis)
    passkey_id = (await store.list(alice.sub))[0].credential_id
    await store.update_after_use(alice.sub, passkey_id, 5)

    with pytest.raises(SignCountNotIncreased):
        await store.update_after_use(alice.sub, passkey_id, 4)

    assert credential.credential_id
    assert (await store.get(alice.sub, passkey_id)).sign_count == 5


async def test_login_rejects_disabled_user(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    await Accounts(op.redis, op.settings).set_disabled(alice.sub, True)

    reply = await passkey_login(browser, op, authenticator, credential)

    await assert_login_rejected(reply, "cannot be used to sign in")


async def test_login_rejects_other_user_handle(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    bob = await op.add_user("bob", PASSWORD)

    reply = await passkey_login(
        browser, op, authenticator, credential, user_handle=bob.sub.encode()
    )

    await assert_login_rejected(reply, "could not be verified")


async def test_login_options_require_csrf(op, browser):
    await login_page(browser, op, None)

    reply = await post_json(browser, op.url + "/login/passkey/options", None)

    assert reply.status == 403
    assert "error" in await reply.json()


async def test_login_submit_requires_csrf(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    form = await login_page(browser, op, None)
    options = await login_options(browser, op, form)
    answer = authenticator.get(options["publicKey"], credential)
    form["csrf_token"] = "not-the-token"

    reply = await submit_login(browser, op, form, options["ceremony"], answer)

    assert reply.status == 403


async def test_login_rejects_malformed_credential(op, browser):
    form = await login_page(browser, op, None)
    options = await login_options(browser, op, form)

    reply = await submit_login(
        browser, op, form, options["ceremony"], {"id": "!!", "response": 1}
    )

    await assert_login_rejected(reply, "could not be verified")


# -- the sign-in methods page --


async def test_manage_adds_passkey_excluding_existing(
    op, browser, alice, authenticator
):
    first = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, first)
    _, form = await credentials_form(browser, op)

    options = await post_json(
        browser, op.url + "/manage/credentials/passkeys/options", form["csrf_token"]
    )
    data = await options.json()
    excluded = [item["id"] for item in data["publicKey"]["excludeCredentials"]]
    selection = data["publicKey"]["authenticatorSelection"]
    reply, second = authenticator.create(data["publicKey"])
    added = await browser.post_form(
        op.url + "/manage/credentials/passkeys",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
            "name": "phone",
        },
    )

    assert excluded == [reply_id(first)]
    assert selection["residentKey"] == "required"
    assert added.status == 200
    text = await added.text()
    assert "The passkey was added." in text
    assert "phone" in text
    assert len(await PasskeyStore(op.redis).list(alice.sub)) == 2
    fresh = Browser.open(op.url)
    try:
        login = await passkey_login(fresh, op, authenticator, second)
        assert login.status == 200
    finally:
        await fresh.close()


def reply_id(credential: SoftCredential) -> str:
    return b64url(credential.credential_id)


async def test_manage_add_rejects_other_users_ceremony(op, alice, authenticator):
    bob = await op.add_user("bob", PASSWORD)
    alice_browser = Browser.open(op.url)
    bob_browser = Browser.open(op.url)
    try:
        await sign_in_manage_with_password(alice_browser, op, "alice")
        await sign_in_manage_with_password(bob_browser, op, "bob")
        _, alice_form = await credentials_form(alice_browser, op)
        _, bob_form = await credentials_form(bob_browser, op)
        options = await post_json(
            alice_browser,
            op.url + "/manage/credentials/passkeys/options",
            alice_form["csrf_token"],
        )
        data = await options.json()
        reply, _ = authenticator.create(data["publicKey"])

        added = await bob_browser.post_form(
            op.url + "/manage/credentials/passkeys",
            {
                "csrf_token": bob_form["csrf_token"],
                "ceremony": data["ceremony"],
                "credential": json.dumps(reply),
            },
        )
    finally:
        await alice_browser.close()
        await bob_browser.close()

    assert added.status == 400
    assert "belongs to another account" in await added.text()
    assert await PasskeyStore(op.redis).list(bob.sub) == []
    assert await PasskeyStore(op.redis).list(alice.sub) == []


async def test_manage_add_rejects_registered_credential(op, browser, alice):
    bob = await op.add_user("bob", PASSWORD)
    bob_authenticator = SoftAuthenticator(op.url)
    registered = await enrol(op, bob, bob_authenticator)
    await sign_in_manage_with_password(browser, op, "alice")
    authenticator = SoftAuthenticator(op.url)
    original = authenticator.create

    def create_with_taken_id(options: dict[str, Any], **bend: Any):
        return original(options, credential_id=registered.credential_id, **bend)

    authenticator.create = create_with_taken_id  # type: ignore[method-assign]

    reply, _ = await add_passkey_over_http(browser, op, authenticator)

    assert reply.status == 400
    assert "registered already" in await reply.text()
    assert await PasskeyStore(op.redis).list(alice.sub) == []


async def test_manage_add_options_require_csrf(op, browser, alice):
    await sign_in_manage_with_password(browser, op, "alice")

    reply = await post_json(
        browser, op.url + "/manage/credentials/passkeys/options", None
    )

    assert reply.status == 403


async def test_manage_rename_passkey(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/passkeys/rename",
        {
            "csrf_token": form["csrf_token"],
            "credential_id": form["credential_id"],
            "name": "  work   laptop ",
        },
    )

    assert reply.status == 200
    (passkey,) = await PasskeyStore(op.redis).list(alice.sub)
    assert passkey.name == "work laptop"


async def test_manage_rejects_removing_last_passkey(op, browser, authenticator):
    user = await Accounts(op.redis, op.settings).create_user("carol", None)
    credential = await enrol(op, user, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/passkeys/remove",
        {"csrf_token": form["csrf_token"], "credential_id": form["credential_id"]},
    )

    assert reply.status == 409
    assert "only way to sign in" in await reply.text()
    assert len(await PasskeyStore(op.redis).list(user.sub)) == 1


async def test_manage_removes_passkey_when_password_set(
    op, browser, alice, authenticator
):
    credential = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/passkeys/remove",
        {"csrf_token": form["csrf_token"], "credential_id": form["credential_id"]},
    )

    assert reply.status == 200
    assert await PasskeyStore(op.redis).list(alice.sub) == []
    assert await op.redis.get(keys.passkey_owner(credential.credential_id)) is None


async def test_manage_rejects_removing_only_password(op, browser, alice):
    await sign_in_manage_with_password(browser, op, "alice")
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/password/remove",
        {"csrf_token": form["csrf_token"], "current_password": PASSWORD},
    )

    assert reply.status == 409
    assert "only way to sign in" in await reply.text()
    user = await Accounts(op.redis, op.settings).get(alice.sub)
    assert user.password_hash is not None


async def test_manage_removes_password_when_passkey_exists(
    op, browser, alice, authenticator
):
    credential = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/password/remove",
        {"csrf_token": form["csrf_token"], "current_password": PASSWORD},
    )

    assert reply.status == 200
    assert "Your password was removed." in await reply.text()
    user = await Accounts(op.redis, op.settings).get(alice.sub)
    assert user.password_hash is None


async def test_manage_passkey_forms_require_csrf(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)
    _, form = await credentials_form(browser, op)

    reply = await browser.post_form(
        op.url + "/manage/credentials/passkeys/remove",
        {"csrf_token": "wrong", "credential_id": form["credential_id"]},
    )

    assert reply.status == 403
    assert len(await PasskeyStore(op.redis).list(alice.sub)) == 1


async def test_credentials_page_lists_passkeys(op, browser, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    await sign_in_manage(browser, op, authenticator, credential)

    text, _ = await credentials_form(browser, op)

    assert "Sign-in methods" in text
    assert "laptop" in text
    assert "Last used" in text
    assert '<script src="/static/passkeys.js"' in text


# -- invitations --


async def invitation_link(op: OP, **options: Any) -> str:
    token, _ = await InvitationStore(op.redis).create(3600, **options)
    return f"{op.url}/register/{token}"


async def enrol_through_invitation(
    browser: Browser, link: str, username: str, authenticator: SoftAuthenticator
) -> tuple[aiohttp.ClientResponse, SoftCredential | None]:
    page = await browser.get(link)
    if page.status != 200:
        return page, None
    form = hidden_inputs(await page.text())
    options = await post_json(
        browser, link + "/passkey/options", form["csrf_token"], {"username": username}
    )
    if options.status != 200:
        return options, None
    data = await options.json()
    reply, credential = authenticator.create(data["publicKey"])
    result = await browser.post_form(
        link + "/passkey",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
        },
    )
    return result, credential


async def test_invitation_enrols_passkey_account(op, browser, authenticator):
    link = await invitation_link(op, email="dora@example.org")

    reply, credential = await enrol_through_invitation(
        browser, link, "dora", authenticator
    )

    assert reply.status == 200
    assert "dora" in await reply.text()
    user = await Accounts(op.redis, op.settings).find("dora")
    assert user is not None
    assert user.password_hash is None
    assert user.claims["email"] == "dora@example.org"
    assert credential.user_handle == user.sub.encode()
    fresh = Browser.open(op.url)
    try:
        login = await passkey_login(fresh, op, authenticator, credential)
        assert login.status == 200
    finally:
        await fresh.close()


async def test_invitation_reuse_is_gone(op, browser, authenticator):
    link = await invitation_link(op)
    await enrol_through_invitation(browser, link, "dora", authenticator)

    fresh = Browser.open(op.url)
    try:
        reply, _ = await enrol_through_invitation(fresh, link, "erin", authenticator)
    finally:
        await fresh.close()

    assert reply.status == 410
    assert await Accounts(op.redis, op.settings).find("erin") is None


async def test_invitation_second_ceremony_is_gone(op, browser, authenticator):
    link = await invitation_link(op)
    page = await browser.get(link)
    form = hidden_inputs(await page.text())
    first = await post_json(
        browser, link + "/passkey/options", form["csrf_token"], {"username": "dora"}
    )
    second = await post_json(
        browser, link + "/passkey/options", form["csrf_token"], {"username": "erin"}
    )
    answers = []
    for options in (first, second):
        data = await options.json()
        reply, _ = authenticator.create(data["publicKey"])
        answers.append(
            await browser.post_form(
                link + "/passkey",
                {
                    "csrf_token": form["csrf_token"],
                    "ceremony": data["ceremony"],
                    "credential": json.dumps(reply),
                },
            )
        )

    assert answers[0].status == 200
    assert answers[1].status == 410
    assert await Accounts(op.redis, op.settings).find("erin") is None


async def test_invitation_rejects_taken_username(op, browser, alice, authenticator):
    link = await invitation_link(op)

    reply, _ = await enrol_through_invitation(browser, link, "alice", authenticator)

    assert reply.status == 400
    assert "taken" in (await reply.json())["error"]


async def test_invitation_failed_verification_keeps_link(op, browser, authenticator):
    link = await invitation_link(op)
    page = await browser.get(link)
    form = hidden_inputs(await page.text())
    options = await post_json(
        browser, link + "/passkey/options", form["csrf_token"], {"username": "dora"}
    )
    data = await options.json()
    reply, _ = authenticator.create(data["publicKey"], origin="http://evil.localhost")

    result = await browser.post_form(
        link + "/passkey",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
        },
    )

    assert result.status == 400
    assert "could not be verified" in await result.text()
    assert await Accounts(op.redis, op.settings).find("dora") is None
    again, _ = await enrol_through_invitation(browser, link, "dora", authenticator)
    assert again.status == 200


# -- removal and headers --


async def test_removing_user_removes_passkeys(op, alice, authenticator):
    credential = await enrol(op, alice, authenticator)

    removed = await Accounts(op.redis, op.settings).remove(alice.sub)

    assert removed
    assert await op.redis.exists(keys.passkeys(alice.sub)) == 0
    assert await op.redis.get(keys.passkey_owner(credential.credential_id)) is None


async def test_login_page_allows_own_script(op, browser):
    page = await browser.get(op.url + "/login")

    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert 'autocomplete="username webauthn"' in await page.text()
    script = await browser.get(op.url + "/static/passkeys.js")
    assert script.status == 200


@pytest.mark.parametrize(
    ("issuer", "rp_id", "origin"),
    [
        ("http://localhost:8080", "localhost", "http://localhost:8080"),
        ("https://ID.Example.org/op", "id.example.org", "https://id.example.org"),
        ("https://id.example.org:443", "id.example.org", "https://id.example.org"),
        (
            "https://id.example.org:8443",
            "id.example.org",
            "https://id.example.org:8443",
        ),
        ("http://[::1]:9000", "::1", "http://[::1]:9000"),
    ],
)
def test_relying_party_from_issuer(issuer, rp_id, origin):
    identity = RelyingPartyIdentity.from_issuer(issuer)

    assert identity.id == rp_id
    assert identity.origin == origin


async def test_login_page_offers_passkey_in_german(op, browser):
    page = await browser.session.get(
        op.url + "/login", headers={"Accept-Language": "de"}
    )

    text = await page.text()
    assert "Mit einem Passkey anmelden" in text
    assert "Die Passkey-Anfrage wurde abgebrochen oder ist abgelaufen." in text


async def test_store_keeps_last_passkey_without_password(op, authenticator):
    user = await Accounts(op.redis, op.settings).create_user("hal", None)
    await enrol(op, user, authenticator)
    store = PasskeyStore(op.redis)
    (passkey,) = await store.list(user.sub)

    removed = await store.remove_unless_last(user.sub, passkey.credential_id)

    assert removed is None
    assert len(await store.list(user.sub)) == 1


async def test_store_concurrent_removals_keep_one(op, authenticator):
    user = await Accounts(op.redis, op.settings).create_user("hal", None)
    await enrol(op, user, authenticator)
    await enrol(op, user, authenticator)
    store = PasskeyStore(op.redis)
    ids = [passkey.credential_id for passkey in await store.list(user.sub)]

    results = await asyncio.gather(
        *(store.remove_unless_last(user.sub, credential_id) for credential_id in ids)
    )

    assert sorted(results, key=str) == [None, True]
    assert len(await store.list(user.sub)) == 1


async def test_store_removes_last_passkey_with_password(op, alice, authenticator):
    credential = await enrol(op, alice, authenticator)
    store = PasskeyStore(op.redis)
    (passkey,) = await store.list(alice.sub)

    removed = await store.remove_unless_last(alice.sub, passkey.credential_id)

    assert removed is True
    assert await store.list(alice.sub) == []
    assert await op.redis.get(keys.passkey_owner(credential.credential_id)) is None


async def test_passkey_store_on_cluster(cluster):  # noqa: F811 - the fixture
    user = await Accounts(cluster, TEST_SETTINGS).create_user("ivy", None)
    ceremonies = PasskeyCeremonies(cluster, "http://localhost:8080")
    authenticator = SoftAuthenticator("http://localhost:8080")
    ceremony_id, options = await ceremonies.registration_options(
        ADD, user.sub, user.username
    )
    reply, credential = authenticator.create(options)
    ceremony = await ceremonies.take(ceremony_id, ADD)
    passkey = ceremonies.verify_registration(ceremony, reply, "")
    store = ceremonies.store

    await store.add(user.sub, passkey)
    found = await store.find(credential.credential_id)
    counted = await store.update_after_use(user.sub, passkey.credential_id, 3)
    last_removal = await store.remove_unless_last(user.sub, passkey.credential_id)
    removed = await store.remove_all(user.sub)

    assert found == (user.sub, passkey)
    assert counted.sign_count == 3
    assert last_removal is None
    assert removed == 1
    assert await store.find(credential.credential_id) is None


async def test_invitation_rejects_sub_taken_meanwhile(op, browser, authenticator):
    link = await invitation_link(op)
    page = await browser.get(link)
    form = hidden_inputs(await page.text())
    options = await post_json(
        browser, link + "/passkey/options", form["csrf_token"], {"username": "dora"}
    )
    data = await options.json()
    chosen_sub = b64url_decode(data["publicKey"]["user"]["id"]).decode()
    await Accounts(op.redis, op.settings).create_user("other", PASSWORD, sub=chosen_sub)
    reply, _ = authenticator.create(data["publicKey"])

    result = await browser.post_form(
        link + "/passkey",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
        },
    )

    assert result.status == 400
    assert "could not be created" in await result.text()
    assert await Accounts(op.redis, op.settings).find("dora") is None
    other = await Accounts(op.redis, op.settings).get(chosen_sub)
    assert other.username == "other"
    assert await PasskeyStore(op.redis).list(chosen_sub) == []
    invitation = await InvitationStore(op.redis).find(link.rsplit("/", 1)[1])
    assert invitation.state == "pending"


async def test_reset_link_enrols_passkey_for_existing_user(
    op, browser, alice, authenticator
):
    await Accounts(op.redis, op.settings).set_password(alice.sub, None)
    link = await invitation_link(op, sub=alice.sub)

    reply, credential = await enrol_through_invitation(
        browser, link, "someone-else", authenticator
    )

    assert reply.status == 200
    accounts = Accounts(op.redis, op.settings)
    assert await accounts.find("someone-else") is None
    assert len(await accounts.list()) == 1
    assert credential is not None
    assert credential.user_handle == alice.sub.encode()
    assert len(await PasskeyStore(op.redis).list(alice.sub)) == 1
    again = await browser.get(link)
    assert again.status == 410


async def test_reset_link_for_removed_user_is_gone(op, browser, alice, authenticator):
    link = await invitation_link(op, sub=alice.sub)
    await Accounts(op.redis, op.settings).remove(alice.sub)

    reply, credential = await enrol_through_invitation(
        browser, link, "alice", authenticator
    )

    assert reply.status == 410
    assert credential is None


async def test_admin_reset_removes_passkeys(op, browser, authenticator):
    await add_admin(op)
    user = await op.add_user("erin", PASSWORD)
    await enrol(op, user, authenticator)
    await sign_in_admin(browser, op)

    reply = await post(
        browser, op, f"/manage/admin/users/{user.sub}/reset", {"confirm": "yes"}
    )

    assert reply.status == 200
    assert await PasskeyStore(op.redis).list(user.sub) == []
