"""The user administration pages, over HTTP with a management sign-in."""

from __future__ import annotations

import re

import aiohttp
from admin_support import ADMIN, ADMIN_PASSWORD, add_admin, post, sign_in_admin
from sessions_support import refresh, rp_sign_in
from support import hidden_inputs
from test_manage import PASSWORD, sign_in

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import ADMIN_GROUP

USERS = ADMIN + "/users"


def accounts(op):
    return Accounts(op.redis, op.settings)


async def test_admin_overview_shown_to_admin(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await browser.get(op.url + ADMIN)

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    assert 'href="/manage/admin/users"' in await reply.text()


async def test_manage_nav_links_admin_only_for_admins(op, browser):
    await add_admin(op)
    await op.add_user()
    await sign_in_admin(browser, op)
    admin_page = await browser.get(op.url + "/manage/profile")
    other = type(browser).open(op.url)
    try:
        await sign_in(other, op)
        user_page = await other.get(op.url + "/manage/profile")
        user_text = await user_page.text()
    finally:
        await other.close()

    assert 'href="/manage/admin"' in await admin_page.text()
    assert 'href="/manage/admin"' not in user_text


async def test_admin_pages_signed_out_go_to_sign_in(op):
    async with aiohttp.ClientSession() as http:
        reply = await http.get(op.url + USERS, allow_redirects=False)

    assert reply.status == 302
    assert reply.headers["Location"].startswith("/authorization?")


NON_ADMIN_GETS = (
    ADMIN,
    USERS,
    USERS + "/new",
    ADMIN + "/clients",
    ADMIN + "/clients/new",
    ADMIN + "/clients/show?client_id=porchlight-manage",
    ADMIN + "/clients/delete?client_id=porchlight-manage",
    ADMIN + "/invitations",
)
NON_ADMIN_POSTS = (
    USERS + "/new",
    ADMIN + "/clients/new",
    ADMIN + "/clients/edit",
    ADMIN + "/clients/rotate",
    ADMIN + "/clients/delete",
    ADMIN + "/invitations",
    ADMIN + "/invitations/revoke",
)


async def test_non_admin_gets_403_everywhere(op, browser):
    admin = await add_admin(op)
    await op.add_user()
    await sign_in(browser, op)
    token = hidden_inputs(await (await browser.get(op.url + "/manage/profile")).text())
    user_paths = [f"{USERS}/{admin.sub}", f"{USERS}/{admin.sub}/delete"]

    for path in (*NON_ADMIN_GETS, *user_paths):
        reply = await browser.get(op.url + path)
        assert reply.status == 403, path
        assert "admin group" in await reply.text(), path
    actions = ("claims", "groups", "disable", "enable", "delete", "reset")
    post_paths = [f"{USERS}/{admin.sub}/{action}" for action in actions]
    for path in (*NON_ADMIN_POSTS, *post_paths):
        fields = {"csrf_token": token["csrf_token"], "confirm": "yes"}
        reply = await browser.post_form(op.url + path, fields)
        assert reply.status == 403, path
    stored = await accounts(op).get(admin.sub)
    assert stored is not None
    assert not stored.disabled


async def test_missing_csrf_rejected(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await browser.post_form(
        op.url + f"{USERS}/{user.sub}/disable", {"confirm": "yes"}
    )

    assert reply.status == 403
    stored = await accounts(op).get(user.sub)
    assert stored is not None
    assert not stored.disabled


async def test_user_list_searches_email(op, browser):
    await add_admin(op)
    await op.add_user("alice")
    await accounts(op).create_user("bob", None, {"email": "bob@example.net"})
    await sign_in_admin(browser, op)

    reply = await browser.get(op.url + USERS + "?q=EXAMPLE.NET")

    text = await reply.text()
    assert reply.status == 200
    assert ">bob</a>" in text
    assert ">alice</a>" not in text


async def test_user_list_paginates(op, browser):
    await add_admin(op)
    for number in range(55):
        await accounts(op).create_user(f"user{number:02d}", None)
    await sign_in_admin(browser, op)

    first = await (await browser.get(op.url + USERS)).text()
    second = await (await browser.get(op.url + USERS + "?page=2")).text()

    user_link = re.compile(r'href="/manage/admin/users/[a-z]{5}-[a-z]{5}"')
    assert "56 users found" in first
    assert len(user_link.findall(first)) == 50
    assert len(user_link.findall(second)) == 6
    assert "Page 2 of 2" in second
    assert ">user54</a>" in second


async def test_create_user_with_claims_and_groups(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(
        browser,
        op,
        USERS + "/new",
        {
            "username": "carol",
            "password": "carol's passphrase",
            "password_confirm": "carol's passphrase",
            "groups": "staff, ops",
            "name": "Carol Ann",
            "email": "carol@example.org",
        },
    )

    assert reply.status == 303
    user = await accounts(op).find("carol")
    assert user is not None
    assert reply.headers["Location"] == f"{USERS}/{user.sub}?done=created"
    assert user.groups == ("staff", "ops")
    assert user.claims["name"] == "Carol Ann"
    assert await accounts(op).authenticate("carol", "carol's passphrase") is not None


async def test_create_user_taken_name_rejected(op, browser):
    await add_admin(op)
    await op.add_user("alice")
    await sign_in_admin(browser, op)

    reply = await post(browser, op, USERS + "/new", {"username": "Alice"})

    assert reply.status == 400
    assert "This username is taken." in await reply.text()


async def test_create_user_bad_group_rejected(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(
        browser, op, USERS + "/new", {"username": "dave", "groups": "Bad{group}"}
    )

    assert reply.status == 400
    assert "invalid group" in await reply.text()
    assert await accounts(op).find("dave") is None


async def test_edit_claims_saved(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(
        browser,
        op,
        f"{USERS}/{user.sub}/claims",
        {
            "name": "Alice P. Liddell",
            "email": "alice@example.org",
            "email_verified": "yes",
        },
    )

    assert reply.status == 303
    stored = await accounts(op).get(user.sub)
    assert stored is not None
    assert stored.claims["name"] == "Alice P. Liddell"
    assert stored.claims["email_verified"] is True


async def test_edit_claims_invalid_picture_rejected(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(
        browser, op, f"{USERS}/{user.sub}/claims", {"picture": "javascript:x"}
    )

    assert reply.status == 400
    assert "invalid picture" in await reply.text()


async def test_edit_groups_makes_admin(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{user.sub}/groups", {"groups": "admin"})

    assert reply.status == 303
    stored = await accounts(op).get(user.sub)
    assert stored is not None
    assert stored.groups == (ADMIN_GROUP,)


async def test_disable_user_refuses_login(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{user.sub}/disable", {"confirm": "yes"})

    assert reply.status == 303
    assert await accounts(op).authenticate("alice", PASSWORD) is None
    fresh = type(browser).open(op.url)
    try:
        chain, login = await sign_in(fresh, op)
    finally:
        await fresh.close()
    assert chain[-1].startswith("/login")
    assert login.status != 302


async def test_disable_needs_confirmation(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{user.sub}/disable", {})

    assert reply.status == 400
    stored = await accounts(op).get(user.sub)
    assert stored is not None
    assert not stored.disabled


async def test_enable_user_allows_login(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await accounts(op).set_disabled(user.sub, True)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{user.sub}/enable", {})

    assert reply.status == 303
    assert await accounts(op).authenticate("alice", PASSWORD) is not None


async def test_delete_user_after_confirmation(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)
    confirm = await browser.get(op.url + f"{USERS}/{user.sub}/delete")
    assert confirm.status == 200
    assert 'name="confirm"' in await confirm.text()

    reply = await post(browser, op, f"{USERS}/{user.sub}/delete", {"confirm": "yes"})

    assert reply.status == 200
    assert await accounts(op).get(user.sub) is None


async def test_last_admin_cannot_disable_self(op, browser):
    admin = await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{admin.sub}/disable", {"confirm": "yes"})

    assert reply.status == 409
    assert "last enabled administrator" in await reply.text()
    stored = await accounts(op).get(admin.sub)
    assert stored is not None
    assert not stored.disabled


async def test_last_admin_cannot_delete_self(op, browser):
    admin = await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{admin.sub}/delete", {"confirm": "yes"})

    assert reply.status == 409
    assert await accounts(op).get(admin.sub) is not None


async def test_last_admin_keeps_admin_group(op, browser):
    admin = await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{admin.sub}/groups", {"groups": "ops"})

    assert reply.status == 409
    stored = await accounts(op).get(admin.sub)
    assert stored is not None
    assert stored.groups == (ADMIN_GROUP,)


async def test_admin_may_leave_when_another_remains(op, browser):
    admin = await add_admin(op)
    await add_admin(op, "second")
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{admin.sub}/groups", {"groups": ""})

    assert reply.status == 303
    stored = await accounts(op).get(admin.sub)
    assert stored is not None
    assert stored.groups == ()


async def test_reset_credentials_link_sets_password(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)

    reply = await post(browser, op, f"{USERS}/{user.sub}/reset", {"confirm": "yes"})

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    link = hidden_value(await reply.text(), "shown-once")
    assert await accounts(op).authenticate("alice", PASSWORD) is None
    invitee = type(browser).open(op.url)
    try:
        form_page = await invitee.get(link)
        form_text = await form_page.text()
        fields = hidden_inputs(form_text)
        fields.update(
            {"password": "new alice pass", "password_confirm": "new alice pass"}
        )
        done = await invitee.post_form(link, fields)
        again = await invitee.get(link)
    finally:
        await invitee.close()
    assert form_page.status == 200
    assert 'value="alice"' in form_text
    assert done.status == 200
    assert again.status == 410
    assert await accounts(op).authenticate("alice", "new alice pass") is not None
    assert len(await accounts(op).list()) == 2


async def test_reset_link_ignores_submitted_username(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)
    reply = await post(browser, op, f"{USERS}/{user.sub}/reset", {"confirm": "yes"})
    link = hidden_value(await reply.text(), "shown-once")
    invitee = type(browser).open(op.url)
    try:
        fields = hidden_inputs(await (await invitee.get(link)).text())
        fields.update(
            {
                "username": "root",
                "password": "new alice pass",
                "password_confirm": "new alice pass",
            }
        )
        await invitee.post_form(link, fields)
    finally:
        await invitee.close()

    assert await accounts(op).authenticate("alice", "new alice pass") is not None
    assert await accounts(op).authenticate("root", ADMIN_PASSWORD) is not None


def hidden_value(html: str, element_id: str) -> str:
    """Return the value attribute of the input with this id."""
    marker = f'id="{element_id}"'
    start = html.index(marker)
    value_start = html.index('value="', start) + len('value="')
    return html[value_start : html.index('"', value_start)]


async def test_admin_pages_in_german(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await browser.session.get(
        op.url + USERS, headers={"Accept-Language": "de"}, allow_redirects=False
    )

    text = await reply.text()
    assert reply.status == 200
    assert "Benutzer suchen" in text
    assert "Verwaltung" in text


async def test_edit_claims_unticked_unverifies(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)
    page = await browser.get(op.url + f"{USERS}/{user.sub}")
    assert re.search(r'name="email_verified" value="yes"\s+checked', await page.text())

    await post(browser, op, f"{USERS}/{user.sub}/claims", {"email": "a@example.org"})

    stored = await accounts(op).get(user.sub)
    assert stored is not None
    assert stored.claims["email_verified"] is False
    assert "phone_number_verified" not in stored.claims


async def test_admin_post_signed_out_goes_to_sign_in(op):
    async with aiohttp.ClientSession() as http:
        reply = await http.post(
            op.url + USERS + "/new", data={"username": "x"}, allow_redirects=False
        )

    assert reply.status == 302
    assert reply.headers["Location"].startswith("/authorization?")
    assert await accounts(op).find("x") is None


async def test_reset_credentials_ends_the_users_tokens(op, browser):
    await add_admin(op)
    await op.add_user()
    client = await op.add_client("rp-reset")
    user_browser = type(browser).open(op.url)
    try:
        _, token = await rp_sign_in(op.url, user_browser, client)
    finally:
        await user_browser.close()
    await sign_in_admin(browser, op)
    user = await accounts(op).find("alice")
    assert user is not None

    reply = await post(browser, op, f"{USERS}/{user.sub}/reset", {"confirm": "yes"})
    refreshed = await refresh(op.url, client, token["refresh_token"])

    assert reply.status == 200
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
