"""Failed logins slow down, then lock, per username and per address."""

from __future__ import annotations

import logging
import re
import time

import pytest
from conftest import OP, TEST_ARGON2
from support import Browser, free_port, hidden_inputs
from test_manage import sign_in

from porchlight_op.app import create_app
from porchlight_op.settings import load_settings
from porchlight_op.store import keys

PASSWORD = "correct horse battery"
WRONG = "wrong password here"
LOCKED = "Too many failed attempts. Try again in"
INCORRECT = "The username or password is incorrect."
THRESHOLDS = {
    "login_max_failures": 3,
    "login_max_failures_per_address": 6,
    "login_failure_window": 60,
    "login_lockout": 120,
    "login_slowdown_after": 2,
    "login_max_delay": 0.5,
}


@pytest.fixture
async def op(redis, aiohttp_server) -> OP:
    """The OP with small login thresholds."""
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "issuer": f"http://127.0.0.1:{port}",
            "port": port,
            **TEST_ARGON2,
            **THRESHOLDS,
        },
    )
    server = await aiohttp_server(create_app(settings, redis), port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, redis)


async def _log_in(op: OP, username: str, password: str) -> tuple[int, str]:
    """Submit the login form once in a fresh browser; return status and page."""
    browser = Browser.open(op.url)
    try:
        page = await browser.get(op.url + "/login")
        form = hidden_inputs(await page.text())
        form.update({"username": username, "password": password})
        reply = await browser.post_form(op.url + "/login", form)
        return reply.status, await reply.text()
    finally:
        await browser.close()


def _error(page: str) -> str:
    found = re.search(r'id="login-error">([^<]*)<', page)
    return found.group(1) if found else ""


async def test_username_locks_after_max_failures(op):
    await op.add_user()

    replies = [await _log_in(op, "alice", WRONG) for _ in range(3)]
    status, page = await _log_in(op, "alice", PASSWORD)

    assert [_error(page) for _, page in replies[:2]] == [INCORRECT, INCORRECT]
    assert _error(replies[2][1]).startswith(LOCKED)
    assert status == 200
    assert _error(page) == "Too many failed attempts. Try again in 2 minutes."


async def test_unknown_username_locks_the_same_way(op):
    await op.add_user()

    for _ in range(3):
        await _log_in(op, "alice", WRONG)
        await _log_in(op, "nobody", WRONG)
    known = await _log_in(op, "alice", WRONG)
    unknown = await _log_in(op, "nobody", WRONG)

    assert known[0] == unknown[0] == 200
    assert _error(known[1]) == _error(unknown[1])
    assert _error(known[1]).startswith(LOCKED)


async def test_success_resets_username_counter(op):
    await op.add_user()

    for _ in range(2):
        await _log_in(op, "alice", WRONG)
    status, _ = await _log_in(op, "alice", PASSWORD)
    for _ in range(2):
        await _log_in(op, "alice", WRONG)
    _, page = await _log_in(op, "alice", WRONG)

    assert status == 200
    assert _error(page).startswith(LOCKED)
    assert await op.redis.get(keys.login_failures_user("alice")) == b"3"


async def test_success_logs_in_below_threshold(op):
    await op.add_user()

    for _ in range(2):
        await _log_in(op, "alice", WRONG)
    _, page = await _log_in(op, "alice", PASSWORD)

    assert _error(page) == ""
    assert await op.redis.get(keys.login_failures_user("alice")) is None


async def test_address_limit_locks_every_username(op):
    await op.add_user()

    for number in range(6):
        await _log_in(op, f"guess{number}", WRONG)
    _, page = await _log_in(op, "alice", PASSWORD)

    assert _error(page).startswith(LOCKED)


async def test_failures_slow_down_before_locking(op):
    await op.add_user()
    for _ in range(2):
        await _log_in(op, "alice", WRONG)

    started = time.monotonic()
    _, page = await _log_in(op, "alice", PASSWORD)
    elapsed = time.monotonic() - started

    assert _error(page) == ""
    assert elapsed >= 0.25


async def test_counter_expires_with_window(op):
    await _log_in(op, "alice", WRONG)

    ttl = await op.redis.ttl(keys.login_failures_user("alice"))
    address_ttl = await op.redis.ttl(keys.login_failures_address("127.0.0.1"))

    assert 0 < ttl <= 60
    assert 0 < address_ttl <= 60


async def test_lock_logs_security_event(op, caplog):
    caplog.set_level(logging.INFO, logger="porchlight_op.events")

    for _ in range(3):
        await _log_in(op, "nobody", WRONG)

    locked = [r for r in caplog.records if "event=login_locked" in r.getMessage()]
    assert len(locked) == 1
    assert "scope=username" in locked[0].getMessage()
    assert "nobody" not in locked[0].getMessage()


async def test_current_password_guesses_on_manage_pages_lock(op):
    await op.add_user("alice", PASSWORD)
    browser = Browser.open(op.url)
    try:
        await sign_in(browser, op)
        replies = []
        for _ in range(THRESHOLDS["login_max_failures"] + 1):
            page = await browser.get(op.url + "/manage/credentials")
            form = hidden_inputs(await page.text())
            form.update(
                {
                    "current_password": WRONG,
                    "new_password": "another long passphrase",
                    "new_password_confirm": "another long passphrase",
                }
            )
            reply = await browser.post_form(op.url + "/manage/credentials", form)
            replies.append(await reply.text())
    finally:
        await browser.close()
    _, text = await _log_in(op, "alice", PASSWORD)

    assert "The current password is wrong." in replies[0]
    assert LOCKED in replies[-1]
    assert LOCKED in text
