"""SIGTERM during a request: the request finishes, then the process exits."""

from __future__ import annotations

import asyncio
import signal

import pytest
from servers import post_token, route_to
from support import REDIRECT_URI, Browser, basic_auth, hidden_inputs, query_of
from test_processes import CLIENT_SECRET, PASSWORD, USERNAME, provision, relying_party

from porchlight_op.accounts.service import Accounts
from porchlight_op.settings import load_settings
from porchlight_op.store.consent import ConsentStore

# Expensive enough that the login is still hashing when SIGTERM arrives.
SLOW_ARGON2 = {
    "PORCHLIGHT_ARGON2_TIME_COST": "4",
    "PORCHLIGHT_ARGON2_MEMORY_COST": "131072",
    "PORCHLIGHT_ARGON2_PARALLELISM": "1",
}


@pytest.mark.slow
async def test_sigterm_lets_login_in_flight_finish(redis, redis_server, start_server):
    client, _ = await provision(redis)
    # Rehash the password with the slow parameters, so verification is slow too.
    slow = load_settings(
        environ={},
        overrides={
            "argon2_time_cost": 4,
            "argon2_memory_cost": 131072,
            "argon2_parallelism": 1,
        },
    )
    accounts = Accounts(redis, slow)
    user = await accounts.find(USERNAME)
    await accounts.set_password(user.sub, PASSWORD)
    # Consent given earlier, so the login redirects straight to the client.
    await ConsentStore(redis, 3600).grant(user.sub, client.client_id, client.scope)
    first = start_server(redis_server, env=SLOW_ARGON2)
    rp = await relying_party(first.issuer)
    route_to(rp, first)
    browser = Browser.open(first.url)
    start = await browser.get(rp.authorization_url())
    page = await browser.get(first.url + start.headers["Location"])
    form = hidden_inputs(await page.text())
    form.update({"username": USERNAME, "password": PASSWORD})

    login = asyncio.create_task(browser.post_form(first.url + "/login", form))
    await asyncio.sleep(0.2)
    first.process.send_signal(signal.SIGTERM)
    reply = await login
    status = await asyncio.to_thread(first.process.wait, 20)
    await browser.close()

    second = start_server(redis_server, issuer=first.issuer)
    location = reply.headers.get("Location", "")
    token = await post_token(
        second,
        {
            "grant_type": "authorization_code",
            "code": query_of(location).get("code", ""),
            "redirect_uri": REDIRECT_URI,
            "code_verifier": rp.verifier or "",
        },
        basic_auth(client.client_id, CLIENT_SECRET),
    )

    assert reply.status == 302
    assert location.startswith(REDIRECT_URI)
    assert status == 0
    assert token.status_code == 200, token.text
