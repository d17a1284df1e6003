"""Hostile input and races against the passkey, sessions, admin and invitation pages.

Most tests send something a browser would not (raw bytes, odd JSON, broken
form bodies) and check for a clear rejection instead of a server error. The
others cover a grant issued while its login ends, secrets in logs, and
administration forms that changed or kept what they should not. Raw requests
go over a plain socket, because HTTP clients refuse to send header or body
bytes that are not valid text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest
from admin_support import ADMIN, add_admin, post, sign_in_admin
from aiohttp import web
from support import REDIRECT_URI, Browser, free_port, hidden_inputs, pkce_pair
from test_passkeys import (
    PASSWORD,
    credentials_form,
    login_options,
    login_page,
    post_json,
    sign_in_manage_with_password,
)
from test_redis_outage import fragile_op, own_redis  # noqa: F401 - fixtures
from webauthn_authenticator import SoftAuthenticator

from porchlight_op.accounts.service import Accounts
from porchlight_op.app import create_app
from porchlight_op.oidc.provider import (
    Authentication,
    AuthorizationError,
    AuthorizationRequest,
)
from porchlight_op.store import keys
from porchlight_op.store.invitations import InvitationStore
from porchlight_op.store.passkeys import PasskeyStore
from porchlight_op.store.user_logins import LoginEntry, UserLogins
from porchlight_op.store.user_revocation import UserRevocation
from porchlight_op.web.authorize import complete_login
from porchlight_op.web.keys import PROVIDER, USER_SESSIONS
from porchlight_op.web.login_session import new_sid
from porchlight_op.web.passkeys import CHALLENGE_RATE_LIMIT

JSON_TYPE = "application/json"


async def send_raw(op, request: bytes) -> bytes:
    """Send one HTTP/1.1 request to the OP over TCP; return the whole reply."""
    parts = urlsplit(op.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def cookie_header(browser: Browser) -> bytes:
    """Return the browser's cookies as a Cookie header value."""
    jar = browser.session.cookie_jar
    return "; ".join(f"{cookie.key}={cookie.value}" for cookie in jar).encode()


@pytest.fixture
def authenticator(op) -> SoftAuthenticator:
    return SoftAuthenticator(op.url)


def shown_once(html: str) -> str:
    """Return the value of the page's shown-once field (a link or secret)."""
    match = re.search(r'id="shown-once"[^>]*value="([^"]+)"', html)
    assert match is not None, html
    return unescape(match.group(1))


def status_of(reply: bytes) -> int:
    """Return the status code of a raw HTTP reply."""
    return int(reply.split(b" ", 2)[1])


# -- CSRF tokens --


async def test_csrf_header_with_invalid_utf8_is_forbidden(op, browser):
    await login_page(browser, op, None)
    request = (
        b"POST /login/passkey/options HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 2\r\n"
        b"X-CSRF-Token: \xff\xfe\r\n"
        b"Cookie: " + cookie_header(browser) + b"\r\n"
        b"Connection: close\r\n\r\n{}"
    )

    reply = await send_raw(op, request)

    assert status_of(reply) == 403


# -- passkey responses --


async def test_passkey_with_object_transports_is_added(op, browser, authenticator):
    await op.add_user("alice", PASSWORD)
    await sign_in_manage_with_password(browser, op, "alice")
    _, form = await credentials_form(browser, op)
    options = await post_json(
        browser, op.url + "/manage/credentials/passkeys/options", form["csrf_token"]
    )
    data = await options.json()
    reply, _ = authenticator.create(data["publicKey"])
    reply["response"]["transports"] = [{"usb": True}, ["nfc"], "internal"]

    added = await browser.post_form(
        op.url + "/manage/credentials/passkeys",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
        },
    )

    assert added.status == 200
    (passkey,) = await PasskeyStore(op.redis).list(
        (await Accounts(op.redis, op.settings).find("alice")).sub
    )
    assert passkey.transports == ("internal",)


# -- form bodies the management pages cannot decode --

MANAGEMENT_FORMS = [
    "/manage/credentials",
    "/manage/profile",
    "/manage/sessions/end",
    "/manage/sessions/revoke",
    "/manage/credentials/passkeys/rename",
    "/manage/admin/users/new",
    "/manage/admin/clients/new",
    "/manage/admin/invitations",
]


def form_post(path: str, browser: Browser, body: bytes, content_type: bytes) -> bytes:
    """Build a raw POST with the browser's cookies."""
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Cookie: " + cookie_header(browser) + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )


@pytest.mark.parametrize("path", MANAGEMENT_FORMS)
async def test_management_form_with_invalid_utf8_is_rejected(op, browser, path):
    await add_admin(op)
    await sign_in_admin(browser, op)
    request = form_post(
        path, browser, b"csrf_token=\xff\xfe", b"application/x-www-form-urlencoded"
    )

    reply = await send_raw(op, request)

    assert status_of(reply) == 400
    assert b"The request is malformed." in reply


async def test_management_form_with_unknown_charset_is_rejected(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    request = form_post(
        "/manage/admin/users/new",
        browser,
        b"csrf_token=x",
        b"application/x-www-form-urlencoded; charset=no-such-charset",
    )

    reply = await send_raw(op, request)

    assert status_of(reply) == 400


# -- secrets in logs --


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """Return the captured messages of the OP's own loggers."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("porchlight_op")
    )


async def test_storage_outage_log_omits_invitation_token(
    fragile_op,  # noqa: F811 - the fixture
    own_redis,  # noqa: F811 - the fixture
    caplog,
):
    token, _ = await InvitationStore(fragile_op.redis).create(3600)
    own_redis.kill()
    caplog.set_level(logging.DEBUG, logger="porchlight_op")

    async with httpx.AsyncClient(base_url=fragile_op.url) as http:
        reply = await http.get(f"/register/{token}")

    assert reply.status_code == 503
    assert "storage unavailable" in server_log(caplog)
    assert token not in server_log(caplog)


# -- grants issued while a login ends --


async def authorization_request(op, client_id: str) -> AuthorizationRequest:
    """Return a verified code flow request of the client, as /authorization makes."""
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return await op.app[PROVIDER].authorization_request(params)


async def test_grant_of_ended_login_is_revoked(op):
    user = await op.add_user("alice", PASSWORD)
    await op.add_client("rp")
    auth_request = await authorization_request(op, "rp")
    # The authorization checked this login, then the sessions page ended it
    # (removed its index entry) before the grant was recorded.
    ended = Authentication(user.sub, int(time.time()), ("pwd",), new_sid())

    with pytest.raises(AuthorizationError) as raised:
        await op.app[PROVIDER].issue_code(auth_request, ended)

    assert raised.value.error.error == "login_required"
    revocation = UserRevocation(op.redis)
    assert await revocation.grant_documents(user.sub, "rp") == []


async def test_grant_of_live_login_is_kept(op):
    user = await op.add_user("alice", PASSWORD)
    await op.add_client("rp")
    auth_request = await authorization_request(op, "rp")
    sid = new_sid()
    now = int(time.time())
    entry = LoginEntry(sid, now, now, ("pwd",), "", "127.0.0.1")
    await op.app[USER_SESSIONS].logins.add(user.sub, entry)

    location = await op.app[PROVIDER].issue_code(
        auth_request, Authentication(user.sub, now, ("pwd",), sid)
    )

    assert "code=" in location
    revocation = UserRevocation(op.redis)
    assert len(await revocation.grant_documents(user.sub, "rp")) == 1


# -- deeply nested JSON --


async def test_passkey_options_with_deep_json_are_refused(op, browser):
    form = await login_page(browser, op, None)

    reply = await browser.session.post(
        op.url + "/login/passkey/options",
        data=b"[" * 20000,
        headers={"X-CSRF-Token": form["csrf_token"], "Content-Type": JSON_TYPE},
    )

    assert reply.status == 403
    assert "error" in await reply.json()


async def test_passkey_login_with_deep_json_is_rejected(op, browser):
    form = await login_page(browser, op, None)
    options = await login_options(browser, op, form)

    reply = await browser.post_form(
        op.url + "/login/passkey",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": options["ceremony"],
            "credential": "[" * 20000,
        },
    )

    assert reply.status == 400
    assert "The passkey response is missing." in await reply.text()


# -- invitation lifetimes --


async def test_invitation_expiry_beyond_limit_is_rejected(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    created = await post(browser, op, ADMIN + "/invitations", {"expires": "9999999d"})
    listed = await browser.get(op.url + ADMIN + "/invitations")

    assert created.status == 400
    assert "at most 3650 days" in await created.text()
    assert listed.status == 200


# -- administration forms --


async def test_admin_created_password_keeps_spaces(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    password = "  spaced passphrase  "

    created = await post(
        browser,
        op,
        ADMIN + "/users/new",
        {"username": "dave", "password": password, "password_confirm": password},
    )

    assert created.status == 303
    accounts = Accounts(op.redis, op.settings)
    assert await accounts.authenticate("dave", password) is not None


async def test_second_reset_revokes_first_link(op, browser):
    await add_admin(op)
    user = await op.add_user("erin", PASSWORD)
    await sign_in_admin(browser, op)
    reset_path = f"{ADMIN}/users/{user.sub}/reset"

    first = await post(browser, op, reset_path, {"confirm": "yes"})
    second = await post(browser, op, reset_path, {"confirm": "yes"})

    first_link = shown_once(await first.text())
    second_link = shown_once(await second.text())
    fresh = Browser.open(op.url)
    try:
        assert (await fresh.get(first_link)).status == 410
        assert (await fresh.get(second_link)).status == 200
    finally:
        await fresh.close()


async def test_passkey_options_with_unknown_charset_are_refused(op, browser):
    form = await login_page(browser, op, None)

    reply = await browser.session.post(
        op.url + "/login/passkey/options",
        data=b"{}",
        headers={
            "X-CSRF-Token": form["csrf_token"],
            "Content-Type": JSON_TYPE + "; charset=no-such-charset",
        },
    )

    assert reply.status == 403
    assert "error" in await reply.json()


# -- ceremonies used for another purpose or invitation --


async def test_login_ceremony_cannot_add_passkey(op, browser, authenticator):
    await op.add_user("alice", PASSWORD)
    await sign_in_manage_with_password(browser, op, "alice")
    _, form = await credentials_form(browser, op)
    login = await post_json(
        browser, op.url + "/login/passkey/options", form["csrf_token"]
    )
    add = await post_json(
        browser, op.url + "/manage/credentials/passkeys/options", form["csrf_token"]
    )
    reply, _ = authenticator.create((await add.json())["publicKey"])

    added = await browser.post_form(
        op.url + "/manage/credentials/passkeys",
        {
            "csrf_token": form["csrf_token"],
            "ceremony": (await login.json())["ceremony"],
            "credential": json.dumps(reply),
        },
    )

    assert added.status == 400
    assert "has expired" in await added.text()
    alice = await Accounts(op.redis, op.settings).find("alice")
    assert await PasskeyStore(op.redis).list(alice.sub) == []


async def test_enrol_ceremony_of_other_invitation_is_rejected(
    op, browser, authenticator
):
    store = InvitationStore(op.redis)
    first, _ = await store.create(3600)
    second, _ = await store.create(3600)
    first_link = f"{op.url}/register/{first}"
    second_link = f"{op.url}/register/{second}"
    page = await browser.get(first_link)
    csrf = hidden_inputs(await page.text())["csrf_token"]
    options = await post_json(
        browser, first_link + "/passkey/options", csrf, {"username": "dora"}
    )
    data = await options.json()
    reply, _ = authenticator.create(data["publicKey"])

    result = await browser.post_form(
        second_link + "/passkey",
        {
            "csrf_token": csrf,
            "ceremony": data["ceremony"],
            "credential": json.dumps(reply),
        },
    )

    assert result.status == 400
    assert await Accounts(op.redis, op.settings).find("dora") is None
    assert (await store.find(second)).state == "pending"


async def test_login_completed_after_a_disable_is_ended(op, aiohttp_server):
    """A disable landing between the credential check and the session start wins.

    The extra route stands for a login whose password or passkey was checked
    just before an administrator disabled the account.
    """
    user = await op.add_user("mallory")
    app = create_app(op.settings, op.redis)

    async def checked_then_disabled(request: web.Request) -> web.StreamResponse:
        await Accounts(op.redis, op.settings).set_disabled(user.sub, True)
        return await complete_login(request, "", user.sub, ("pwd",))

    app.router.add_post("/test/checked-then-disabled", checked_then_disabled)
    server = await aiohttp_server(app, port=free_port())
    browser = Browser.open(str(server.make_url("")))
    try:
        reply = await browser.post_form(
            str(server.make_url("/test/checked-then-disabled")), {}
        )
        text = await reply.text()
        logins = await UserLogins(
            op.redis, op.settings.session_max_age, op.settings.session_idle_timeout
        ).entries(user.sub)
    finally:
        await browser.close()

    assert "The username or password is incorrect." in text
    assert logins == []


async def test_passkey_challenges_per_address_are_limited(op, browser):
    form = await login_page(browser, op, None)
    url = op.url + "/login/passkey/options"

    statuses = [
        (await post_json(browser, url, form["csrf_token"])).status
        for _ in range(CHALLENGE_RATE_LIMIT + 1)
    ]

    assert statuses[:-1] == [200] * CHALLENGE_RATE_LIMIT
    assert statuses[-1] == 429
    assert 0 < await op.redis.ttl(keys.webauthn_challenge_count("127.0.0.1")) <= 60


async def complete_after(op, aiohttp_server, change, amr) -> tuple[str, list]:
    """Run complete_login for mallory after `change`; return the page and logins."""
    user = await op.add_user("mallory")
    app = create_app(op.settings, op.redis)

    async def checked_then_changed(request: web.Request) -> web.StreamResponse:
        await change(user)
        return await complete_login(request, "", user.sub, amr)

    app.router.add_post("/test/checked-then-changed", checked_then_changed)
    server = await aiohttp_server(app, port=free_port())
    browser = Browser.open(str(server.make_url("")))
    try:
        reply = await browser.post_form(
            str(server.make_url("/test/checked-then-changed")), {}
        )
        text = await reply.text()
    finally:
        await browser.close()
    logins = await UserLogins(
        op.redis, op.settings.session_max_age, op.settings.session_idle_timeout
    ).entries(user.sub)
    return text, logins


async def test_password_login_completed_after_a_reset_is_ended(op, aiohttp_server):
    async def reset(user):
        await Accounts(op.redis, op.settings).set_password(user.sub, None)

    text, logins = await complete_after(op, aiohttp_server, reset, ("pwd",))

    assert "The username or password is incorrect." in text
    assert logins == []


async def test_passkey_login_without_passkeys_left_is_ended(op, aiohttp_server):
    async def nothing(user):
        return None

    text, logins = await complete_after(op, aiohttp_server, nothing, ("hwk", "user"))

    assert "The username or password is incorrect." in text
    assert logins == []


async def test_password_login_with_password_kept_completes(op, aiohttp_server):
    async def nothing(user):
        return None

    text, logins = await complete_after(op, aiohttp_server, nothing, ("pwd",))

    assert "The username or password is incorrect." not in text
    assert len(logins) == 1
