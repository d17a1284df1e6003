"""Browser sessions without a login expire soon, and emptied ones are deleted."""

from __future__ import annotations

from flows import PASSWORD, logout_url, sign_in_for_logout
from support import hidden_inputs
from yarl import URL


def session_key(op, browser) -> str | None:
    """Return the Redis key of the browser's session, or None without a cookie."""
    cookies = browser.session.cookie_jar.filter_cookies(URL(op.url))
    cookie = cookies.get(op.settings.cookie_name)
    if cookie is None or not cookie.value:
        return None
    return f"{op.settings.cookie_name}_{cookie.value}"


async def test_anonymous_login_page_session_is_short(op, browser):
    reply = await browser.get(op.url + "/login")
    key = session_key(op, browser)

    assert reply.status == 200
    assert key is not None
    assert 0 < await op.redis.ttl(key) <= op.settings.pending_request_lifetime


async def test_signed_in_session_keeps_idle_timeout(op, browser):
    await op.add_user()
    page = await browser.get(op.url + "/login")
    form = hidden_inputs(await page.text())
    form.update({"username": "alice", "password": PASSWORD})

    reply = await browser.post_form(op.url + "/login", form)
    key = session_key(op, browser)

    assert reply.status == 200
    assert key is not None
    ttl = await op.redis.ttl(key)
    assert op.settings.pending_request_lifetime < ttl
    assert ttl <= op.settings.session_idle_timeout


async def test_login_form_expires_with_session(op, browser):
    await op.add_user()
    page = await browser.get(op.url + "/login")
    form = hidden_inputs(await page.text())
    form.update({"username": "alice", "password": PASSWORD})
    key = session_key(op, browser)
    assert key is not None
    await op.redis.delete(key)

    reply = await browser.post_form(op.url + "/login", form)

    assert reply.status == 403
    assert "The form expired" in await reply.text()


async def test_logout_deletes_session_key(op, browser):
    _, _, token = await sign_in_for_logout(op, browser)
    key = session_key(op, browser)
    assert key is not None
    assert await op.redis.exists(key) == 1

    await browser.get(logout_url(op, id_token_hint=token["id_token"]))

    assert await op.redis.exists(key) == 0
    assert session_key(op, browser) is None
