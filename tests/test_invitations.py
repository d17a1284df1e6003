"""Invitation links: the CLI commands, and registering through /register/<token>."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from conftest import OP
from flows import run_cli, run_cli_json
from support import Browser, hidden_inputs

from porchlight_op.accounts.service import Accounts
from porchlight_op.store.embedded import EmbeddedRedis
from porchlight_op.store.invitations import InvitationStore

PASSWORD = "a long enough password"

# ---------------------------------------------------------------------------
# Command line, against an embedded Redis


def test_invite_create_prints_link(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "invite", "create")

    assert code == 0, err
    link = out.splitlines()[0]
    assert link.startswith("http://localhost:8080/register/")
    assert len(link.rsplit("/", 1)[1]) == 43


def test_invite_create_json_fields(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_cli_json(
        capsys,
        "invite",
        "create",
        "--email",
        "bo@example.org",
        "--admin",
        "--expires",
        "12h",
    )

    assert data["link"].startswith("http://localhost:8080/register/")
    assert data["email"] == "bo@example.org"
    assert data["admin"] is True
    assert data["state"] == "pending"
    assert len(data["id"]) == 12


def test_invite_create_rejects_bad_duration(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "invite", "create", "--expires", "7 weeks")

    assert code == 2
    assert "invalid duration" in err


def test_invite_list_never_shows_token(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_cli_json(capsys, "invite", "create", "--email", "cy@example.org")
    token = created["link"].rsplit("/", 1)[1]

    code, out, err = run_cli(capsys, "invite", "list")
    rows = run_cli_json(capsys, "invite", "list")

    assert code == 0, err
    assert created["id"] in out
    assert "cy@example.org" in out
    assert token not in out
    assert [row["id"] for row in rows] == [created["id"]]
    assert token not in json.dumps(rows)


def test_invite_revoke_by_id(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_cli_json(capsys, "invite", "create")

    revoked = run_cli_json(capsys, "invite", "revoke", created["id"])
    rows = run_cli_json(capsys, "invite", "list")
    again, _, err = run_cli(capsys, "invite", "revoke", created["id"])

    assert revoked == {"revoked": created["id"]}
    assert [row["state"] for row in rows] == ["revoked"]
    assert again == 1
    assert "revoked already" in err


def test_invite_revoke_unknown_id(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "invite", "revoke", "0123456789ab")

    assert code == 1
    assert "not found" in err


def test_init_admin_with_password_creates_admin(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_cli_json(
        capsys, "init-admin", "root", "--password-stdin", stdin="long enough pw\n"
    )
    shown = run_cli_json(capsys, "user", "show", "root")

    assert created["groups"] == ["admin"]
    assert shown["groups"] == ["admin"]
    assert shown["password"] == "set"


def test_init_admin_without_password_prints_bound_link(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_cli_json(capsys, "init-admin", "root")
    users = run_cli(capsys, "user", "list")[1]

    assert data["link"].startswith("http://localhost:8080/register/")
    assert data["username"] == "root"
    assert data["admin"] is True
    assert users.strip() == "no users"


# ---------------------------------------------------------------------------
# /register/<token> over HTTP


async def invite(op: OP, lifetime: int = 3600, **options: Any) -> str:
    """Create an invitation in the OP's Redis and return its registration URL."""
    token, _ = await InvitationStore(op.redis).create(lifetime, **options)
    return f"{op.url}/register/{token}"


async def register(
    browser: Browser, link: str, username: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    """Open the form, read its CSRF token and submit it."""
    page = await browser.get(link)
    assert page.status == 200
    form = hidden_inputs(await page.text())
    form.update(
        {"username": username, "password": password, "password_confirm": password}
    )
    return await browser.post_form(link, form)


async def test_register_then_sign_in(op: OP, browser: Browser) -> None:
    client = await op.add_client("rp")
    link = await invite(op)

    created = await register(browser, link, "dora")
    rp = op.rp(client)
    await rp.discover()
    fresh = Browser.open(op.url)
    try:
        reply = await fresh.authorize(rp.authorization_url(), "dora", PASSWORD)
    finally:
        await fresh.close()
    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    user = await Accounts(op.redis, op.settings).find("dora")

    assert created.status == 200
    assert "dora" in await created.text()
    assert user is not None
    assert user.groups == ()
    assert claims["sub"] == user.sub


async def test_register_form_has_labels(op: OP, browser: Browser) -> None:
    link = await invite(op)

    page = await browser.get(link)
    html = await page.text()

    assert page.status == 200
    assert 'for="username"' in html
    assert 'for="password"' in html
    assert 'for="password_confirm"' in html
    assert 'name="csrf_token"' in html


async def test_register_email_binding_sets_unverified_email(
    op: OP, browser: Browser
) -> None:
    link = await invite(op, email="eve@example.org", admin=True)

    reply = await register(browser, link, "eve")
    user = await Accounts(op.redis, op.settings).find("eve")

    assert reply.status == 200
    assert user is not None
    assert user.claims["email"] == "eve@example.org"
    assert user.claims["email_verified"] is False
    assert user.groups == ("admin",)


async def test_register_bound_username_is_enforced(op: OP, browser: Browser) -> None:
    link = await invite(op, admin=True, username="root")

    page = await browser.get(link)
    reply = await register(browser, link, "someone-else")
    root = await Accounts(op.redis, op.settings).find("root")
    other = await Accounts(op.redis, op.settings).find("someone-else")

    assert "readonly" in await page.text()
    assert reply.status == 200
    assert root is not None
    assert root.groups == ("admin",)
    assert other is None


async def test_register_reused_link_is_gone(op: OP, browser: Browser) -> None:
    link = await invite(op)
    await register(browser, link, "fay")

    page = await browser.get(link)
    html = await page.text()

    assert page.status == 410
    assert "used already" in html
    assert "Traceback" not in html


async def test_register_revoked_link_is_gone(op: OP, browser: Browser) -> None:
    link = await invite(op)
    invitation = (await InvitationStore(op.redis).list())[0]
    await InvitationStore(op.redis).revoke(invitation.id)

    page = await browser.get(link)

    assert page.status == 410
    assert "revoked" in await page.text()


async def test_register_expired_link_not_found(op: OP, browser: Browser) -> None:
    link = await invite(op, lifetime=1)
    deadline = time.monotonic() + 5
    page = await browser.get(link)
    while page.status == 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        page = await browser.get(link)

    assert page.status == 404
    assert "unknown or has expired" in await page.text()


async def test_register_unknown_link_not_found(op: OP, browser: Browser) -> None:
    for token in ("A" * 43, "short", "%00"):
        page = await browser.get(f"{op.url}/register/{token}")

        assert page.status == 404, token


async def test_register_password_mismatch_keeps_link(op: OP, browser: Browser) -> None:
    link = await invite(op)
    page = await browser.get(link)
    form = hidden_inputs(await page.text())
    form.update(
        {"username": "gus", "password": PASSWORD, "password_confirm": PASSWORD + "x"}
    )

    reply = await browser.post_form(link, form)
    again = await register(browser, link, "gus")

    assert reply.status == 400
    assert "do not match" in await reply.text()
    assert again.status == 200


async def test_register_without_csrf_token_rejected(op: OP, browser: Browser) -> None:
    link = await invite(op)
    await browser.get(link)

    reply = await browser.post_form(
        link, {"username": "hal", "password": PASSWORD, "password_confirm": PASSWORD}
    )

    assert reply.status == 403
    assert await Accounts(op.redis, op.settings).find("hal") is None


async def test_register_concurrent_posts_create_one_account(op: OP) -> None:
    link = await invite(op)
    browsers = [Browser.open(op.url) for _ in range(2)]
    try:
        forms = []
        for index, agent in enumerate(browsers):
            form = hidden_inputs(await (await agent.get(link)).text())
            form.update(
                {
                    "username": f"racer{index}",
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                }
            )
            forms.append(form)
        posts = [
            agent.post_form(link, form)
            for agent, form in zip(browsers, forms, strict=True)
        ]
        replies = await asyncio.gather(*posts)
    finally:
        for agent in browsers:
            await agent.close()
    users = await Accounts(op.redis, op.settings).list()

    assert sorted(reply.status for reply in replies) == [200, 410]
    assert len(users) == 1
