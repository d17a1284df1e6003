"""The invitation administration pages, over HTTP with a management sign-in."""

from __future__ import annotations

import time

from admin_support import ADMIN, add_admin, post, sign_in_admin
from support import hidden_inputs
from test_admin_users import hidden_value

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import ADMIN_GROUP
from porchlight_op.store.invitations import REVOKED, USED, InvitationStore

INVITATIONS = ADMIN + "/invitations"


async def create_link(op, browser, **fields):
    reply = await post(browser, op, INVITATIONS, fields)
    assert reply.status == 200, await reply.text()
    assert reply.headers["Cache-Control"] == "no-store"
    return hidden_value(await reply.text(), "shown-once")


async def register(op, browser, link, username, password="invited passphrase"):
    invitee = type(browser).open(op.url)
    try:
        page = await invitee.get(link)
        if page.status != 200:
            return page
        fields = hidden_inputs(await page.text())
        fields.update(
            {"username": username, "password": password, "password_confirm": password}
        )
        return await invitee.post_form(link, fields)
    finally:
        await invitee.close()


async def test_invitation_link_creates_admin(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    link = await create_link(
        op, browser, email="dora@example.org", admin="yes", expires="2d"
    )
    reply = await register(op, browser, link, "dora")

    assert link.startswith(op.url + "/register/")
    assert reply.status == 200
    user = await Accounts(op.redis, op.settings).find("dora")
    assert user is not None
    assert user.groups == (ADMIN_GROUP,)
    assert user.claims["email"] == "dora@example.org"
    [invitation] = await InvitationStore(op.redis).list()
    assert invitation.state == USED
    assert invitation.expires_at - invitation.created_at == 2 * 86400


async def test_invitation_list_never_shows_token(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    link = await create_link(op, browser, email="erin@example.org")
    token = link.rsplit("/", 1)[1]

    reply = await browser.get(op.url + INVITATIONS)

    text = await reply.text()
    [invitation] = await InvitationStore(op.redis).list()
    assert reply.status == 200
    assert token not in text
    assert invitation.id in text
    assert "erin@example.org" in text
    assert "pending" in text


async def test_reused_invitation_gets_clear_page(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    link = await create_link(op, browser)
    await register(op, browser, link, "frank")

    reply = await register(op, browser, link, "grace")

    assert reply.status == 410
    assert "used already" in await reply.text()
    assert await Accounts(op.redis, op.settings).find("grace") is None


async def test_revoked_invitation_gets_clear_page(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    link = await create_link(op, browser)
    [invitation] = await InvitationStore(op.redis).list()

    revoked = await post(
        browser,
        op,
        INVITATIONS + "/revoke",
        {"id": invitation.digest, "confirm": "yes"},
    )
    reply = await register(op, browser, link, "heidi")

    assert revoked.status == 303
    [after] = await InvitationStore(op.redis).list()
    assert after.state == REVOKED
    assert reply.status == 410
    assert "revoked" in await reply.text()


async def test_revoke_needs_confirmation(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    await create_link(op, browser)
    [invitation] = await InvitationStore(op.redis).list()

    reply = await post(browser, op, INVITATIONS + "/revoke", {"id": invitation.digest})

    assert reply.status == 400
    [after] = await InvitationStore(op.redis).list()
    assert after.state == "pending"


async def test_revoke_used_invitation_refused(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)
    link = await create_link(op, browser)
    await register(op, browser, link, "ivan")
    [invitation] = await InvitationStore(op.redis).list()

    reply = await post(
        browser,
        op,
        INVITATIONS + "/revoke",
        {"id": invitation.digest, "confirm": "yes"},
    )

    assert reply.status == 409
    assert "used already" in await reply.text()


async def test_invalid_expiry_rejected(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, INVITATIONS, {"expires": "forever"})

    assert reply.status == 400
    assert "invalid duration" in await reply.text()
    assert await InvitationStore(op.redis).list() == []


async def test_invalid_email_rejected(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)

    reply = await post(browser, op, INVITATIONS, {"email": "nobody"})

    assert reply.status == 400
    assert "invalid email address" in await reply.text()


async def test_reset_link_listed_with_user(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)
    await post(
        browser,
        op,
        f"{ADMIN}/users/{user.sub}/reset",
        {"confirm": "yes", "expires": "1h"},
    )

    reply = await browser.get(op.url + INVITATIONS)

    [invitation] = await InvitationStore(op.redis).list()
    assert invitation.sub == user.sub
    assert invitation.expires_at <= time.time() + 3600
    assert f"credential reset for {user.sub}" in await reply.text()


async def test_reset_link_for_deleted_user_refused(op, browser):
    await add_admin(op)
    user = await op.add_user()
    await sign_in_admin(browser, op)
    reply = await post(
        browser, op, f"{ADMIN}/users/{user.sub}/reset", {"confirm": "yes"}
    )
    link = hidden_value(await reply.text(), "shown-once")
    await Accounts(op.redis, op.settings).remove(user.sub)

    page = await register(op, browser, link, "alice")

    assert page.status == 410
    assert "no longer exists" in await page.text()
