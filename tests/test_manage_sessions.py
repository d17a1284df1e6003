"""The sessions page: signed-in browsers and granted clients, with revoke."""

from __future__ import annotations

import json
import re

import pytest
from conftest import TEST_ARGON2
from sessions_support import (
    PASSWORD,
    introspect,
    manage_sign_in,
    needs_login,
    refresh,
    rp_sign_in,
    sessions_form,
    userinfo,
)
from support import Browser, hidden_inputs

from porchlight_op.accounts.service import Accounts
from porchlight_op.settings import load_settings
from porchlight_op.store import keys
from porchlight_op.web.user_agent import summarize_user_agent

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
_SID_INPUT = re.compile(r'name="sid" value="(?P<sid>[^"]+)"')


def listed_sids(html: str) -> list[str]:
    return [match["sid"] for match in _SID_INPUT.finditer(html)]


@pytest.fixture
async def second(op):
    """A second browser of the same user, with its own cookie jar."""
    instance = Browser.open(op.url)
    yield instance
    await instance.close()


async def own_sid(browser, op) -> str:
    """Return the sid the page marks as this browser's."""
    return await own_sid_at(browser, op.url)


async def own_sid_at(browser, base: str) -> str:
    """Return the sid the page at `base` marks as this browser's."""
    page = await browser.get(base + "/manage/sessions")
    items = (await page.text()).split('<li id="login-')
    marked = [item for item in items if "(this browser)" in item]
    assert len(marked) == 1
    return listed_sids(marked[0])[0]


async def test_page_lists_both_browsers(op, browser, second):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)

    page = await browser.get(op.url + "/manage/sessions")
    html = await page.text()

    assert page.status == 200
    assert len(listed_sids(html)) == 2
    assert html.count("(this browser)") == 1
    assert page.headers["Cache-Control"] == "no-store"


async def test_page_shows_browser_and_address(op):
    await op.add_user()
    firefox = Browser.open(op.url)
    firefox.session.headers["User-Agent"] = FIREFOX
    try:
        await manage_sign_in(firefox, op.url)
        page = await firefox.get(op.url + "/manage/sessions")
        html = await page.text()
    finally:
        await firefox.close()

    assert "Firefox on Linux" in html
    assert "127.0.0.1" in html


async def test_page_lists_granted_client(op, browser):
    await op.add_user()
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)

    page = await browser.get(op.url + "/manage/sessions")
    form_values = hidden_inputs(await page.text())

    assert form_values["client_id"] == "rp-one"


async def test_page_requires_sign_in(op, browser):
    await op.add_user()

    reply = await browser.get(op.url + "/manage/sessions")

    assert reply.status == 302
    assert reply.headers["Location"].startswith("/authorization?")


async def test_ending_other_session_signs_it_out(op, browser, second):
    await op.add_user()
    client = await op.add_client("rp-one")
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)
    _, second_token = await rp_sign_in(op.url, second, client)
    second_sid = await own_sid(second, op)
    form = await sessions_form(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": second_sid},
    )

    assert reply.status == 303
    assert reply.headers["Location"] == "/manage/sessions?done=ended"
    assert await needs_login(second, op.url)
    assert not await needs_login(browser, op.url)
    assert (await userinfo(op.url, second_token["access_token"])).status_code == 401
    assert (await refresh(op.url, client, second_token["refresh_token"])).json()[
        "error"
    ] == "invalid_grant"


async def test_ending_other_session_keeps_own_tokens(op, browser, second):
    await op.add_user()
    client = await op.add_client("rp-one")
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)
    _, token = await rp_sign_in(op.url, browser, client)
    second_sid = await own_sid(second, op)
    form = await sessions_form(browser, op.url)

    await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": second_sid},
    )

    assert (await userinfo(op.url, token["access_token"])).status_code == 200
    assert (await refresh(op.url, client, token["refresh_token"])).status_code == 200


async def test_ending_session_shows_notice_and_drops_it(op, browser, second):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)
    second_sid = await own_sid(second, op)
    form = await sessions_form(browser, op.url)

    await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": second_sid},
    )
    page = await browser.get(op.url + "/manage/sessions?done=ended")
    html = await page.text()

    assert "The session was ended." in html
    assert second_sid not in listed_sids(html)
    assert len(listed_sids(html)) == 1


async def test_ending_own_session_signs_out(op, browser):
    await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)
    sid = await own_sid(browser, op)
    form = await sessions_form(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/end", {"csrf_token": form["csrf_token"], "sid": sid}
    )

    assert reply.status == 200
    assert "You are signed out" in await reply.text()
    assert await needs_login(browser, op.url)
    assert (await userinfo(op.url, token["access_token"])).status_code == 401


async def test_end_without_csrf_is_forbidden(op, browser, second):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)
    second_sid = await own_sid(second, op)

    missing = await browser.post_form(
        op.url + "/manage/sessions/end", {"sid": second_sid}
    )
    wrong = await browser.post_form(
        op.url + "/manage/sessions/end", {"csrf_token": "forged", "sid": second_sid}
    )

    assert missing.status == 403
    assert "Form expired" in await missing.text()
    assert wrong.status == 403
    assert not await needs_login(second, op.url)


async def test_end_bogus_sid_is_not_found(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": "no-such-session"},
    )
    empty = await browser.post_form(
        op.url + "/manage/sessions/end", {"csrf_token": form["csrf_token"]}
    )

    assert reply.status == 404
    assert "Session not found" in await reply.text()
    assert empty.status == 404
    assert not await needs_login(browser, op.url)


async def test_end_other_users_sid_is_not_found(op, browser, second):
    await op.add_user()
    await op.add_user("bob")
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url, username="bob")
    bob_sid = await own_sid(second, op)
    form = await sessions_form(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": bob_sid},
    )

    assert reply.status == 404
    assert not await needs_login(second, op.url)


async def test_revoking_client_kills_its_tokens(op, browser):
    await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/revoke",
        {"csrf_token": form["csrf_token"], "client_id": "rp-one"},
    )
    refreshed = await refresh(op.url, client, token["refresh_token"])
    claims = await userinfo(op.url, token["access_token"])

    assert reply.status == 303
    assert reply.headers["Location"] == "/manage/sessions?done=revoked"
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert claims.status_code == 401
    assert claims.headers["WWW-Authenticate"].startswith(
        'Bearer realm="porchlight", error="invalid_token"'
    )
    assert (await introspect(op.url, client, token["access_token"])) == {
        "active": False
    }


async def test_revoking_client_forgets_consent(op, browser):
    user = await op.add_user()
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)
    assert await op.redis.exists(keys.consent(user.sub, "rp-one"))

    await browser.post_form(
        op.url + "/manage/sessions/revoke",
        {"csrf_token": form["csrf_token"], "client_id": "rp-one"},
    )
    page = await browser.get(op.url + "/manage/sessions")

    assert not await op.redis.exists(keys.consent(user.sub, "rp-one"))
    assert "rp-one" not in await page.text()


async def test_revoking_client_keeps_browser_signed_in(op, browser):
    await op.add_user()
    client = await op.add_client("rp-one")
    await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)

    await browser.post_form(
        op.url + "/manage/sessions/revoke",
        {"csrf_token": form["csrf_token"], "client_id": "rp-one"},
    )

    assert not await needs_login(browser, op.url)


async def test_revoking_one_client_keeps_another(op, browser):
    await op.add_user()
    one = await op.add_client("rp-one")
    two = await op.add_client("rp-two")
    await rp_sign_in(op.url, browser, one)
    _, token = await rp_sign_in(op.url, browser, two)
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)

    await browser.post_form(
        op.url + "/manage/sessions/revoke",
        {"csrf_token": form["csrf_token"], "client_id": "rp-one"},
    )

    assert (await userinfo(op.url, token["access_token"])).status_code == 200
    assert (await refresh(op.url, two, token["refresh_token"])).status_code == 200


async def test_revoke_without_csrf_is_forbidden(op, browser):
    await op.add_user()
    client = await op.add_client("rp-one")
    _, token = await rp_sign_in(op.url, browser, client)
    await manage_sign_in(browser, op.url)

    reply = await browser.post_form(
        op.url + "/manage/sessions/revoke", {"client_id": "rp-one"}
    )

    assert reply.status == 403
    assert (await userinfo(op.url, token["access_token"])).status_code == 200


async def test_revoke_unknown_client_is_not_found(op, browser):
    await op.add_user()
    await op.add_client("rp-one")
    await manage_sign_in(browser, op.url)
    form = await sessions_form(browser, op.url)

    for client_id in ("rp-one", "no-such-client", "x" * 1000):
        reply = await browser.post_form(
            op.url + "/manage/sessions/revoke",
            {"csrf_token": form["csrf_token"], "client_id": client_id},
        )
        assert reply.status == 404, client_id
        assert "Application not found" in await reply.text()


async def test_management_client_is_not_revocable(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    page = await browser.get(op.url + "/manage/sessions")
    html = await page.text()
    form = hidden_inputs(html)

    reply = await browser.post_form(
        op.url + "/manage/sessions/revoke",
        {"csrf_token": form["csrf_token"], "client_id": "porchlight-manage"},
    )

    assert "Porchlight account management" in html
    assert 'value="porchlight-manage"' not in html
    assert reply.status == 400
    assert not await needs_login(browser, op.url)


async def test_logout_endpoint_drops_session_from_list(op, browser, second):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    await manage_sign_in(second, op.url)
    second_sid = await own_sid(second, op)
    page = await second.get(op.url + "/logout")
    form = hidden_inputs(await page.text())

    await second.post_form(op.url + "/logout/confirm", form)
    listing = await browser.get(op.url + "/manage/sessions")

    assert second_sid not in listed_sids(await listing.text())


async def test_new_login_replaces_entry_of_old_one(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    old_sid = await own_sid(browser, op)
    login_page = await browser.get(op.url + "/login")
    form = hidden_inputs(await login_page.text())
    form.update({"username": "alice", "password": PASSWORD})

    await browser.post_form(op.url + "/login", form)
    await manage_sign_in(browser, op.url)
    page = await browser.get(op.url + "/manage/sessions")
    sids = listed_sids(await page.text())

    assert old_sid not in sids
    assert len(sids) == 1


@pytest.mark.parametrize(
    ("header", "summary"),
    [
        (FIREFOX, "Firefox on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/604.1",
            "Safari on iOS",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        (None, ""),
        ("x" * 500, "x" * 80),
    ],
)
def test_user_agent_summary(header, summary):
    assert summarize_user_agent(header) == summary


async def test_page_in_german(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    browser.session.headers["Accept-Language"] = "de"
    form = await sessions_form(browser, op.url)

    page = await browser.get(op.url + "/manage/sessions?done=ended")
    missing = await browser.post_form(
        op.url + "/manage/sessions/end",
        {"csrf_token": form["csrf_token"], "sid": "no-such-session"},
    )
    html = await page.text()

    assert "Angemeldete Browser" in html
    assert "Diesen Browser abmelden" in html
    assert "Die Sitzung wurde beendet." in html
    assert "Diese Sitzung ist bereits beendet" in await missing.text()


async def test_session_without_index_entry_ends(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)
    # A session written before logins were indexed lacks the marker field.
    (session_key,) = await op.redis.keys(op.settings.cookie_name + "_*")
    stored = json.loads(await op.redis.get(session_key))
    del stored["session"]["indexed"]
    await op.redis.set(session_key, json.dumps(stored), keepttl=True)

    assert await needs_login(browser, op.url)


async def test_end_session_seen_by_other_process(redis, redis_server, start_server):
    first = start_server(redis_server)
    second = start_server(redis_server, issuer=first.issuer)
    settings = load_settings(environ={}, overrides=TEST_ARGON2)
    await Accounts(redis, settings).create_user("alice", PASSWORD)
    one, two = Browser.open(first.url), Browser.open(second.url)
    try:
        await manage_sign_in(one, first.url)
        await manage_sign_in(two, second.url)
        assert not await needs_login(two, second.url)
        two_sid = await own_sid_at(two, second.url)
        form = await sessions_form(one, first.url)

        reply = await one.post_form(
            first.url + "/manage/sessions/end",
            {"csrf_token": form["csrf_token"], "sid": two_sid},
        )

        assert reply.status == 303
        assert await needs_login(two, second.url)
        assert not await needs_login(one, first.url)
    finally:
        await one.close()
        await two.close()


async def test_page_names_password_method(op, browser):
    await op.add_user()
    await manage_sign_in(browser, op.url)

    page = await browser.get(op.url + "/manage/sessions")

    assert "Sign-in method: Password" in await page.text()
