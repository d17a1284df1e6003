"""Single use under concurrency: codes and refresh tokens raced across processes.

Three `porchlight-op serve` processes share one Redis and one issuer. Each
round fires ten requests at the same moment, spread over the three, from
independent HTTP connections, and counts the outcomes.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from servers import ServerProcess
from support import REDIRECT_URI, Browser, RelyingParty, basic_auth, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import Client
from porchlight_op.settings import DEFAULT_SCOPE, load_settings
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.consent import ConsentStore

ROUNDS = 50
RACERS = 10
SECRET = "race-secret"
ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster(redis, redis_server, start_server):
    """Three OP processes on one Redis, a client, a user and a signed-in browser."""
    for client_id in ("rp-a", "rp-b"):
        await ClientStore(redis).put(
            Client(
                client_id=client_id,
                redirect_uris=(REDIRECT_URI,),
                auth_method="client_secret_basic",
                secret=SECRET,
                scope=("openid", "profile", "email", "offline_access"),
            )
        )
    accounts = Accounts(redis, load_settings(environ={}, overrides=ARGON2))
    user = await accounts.create_user("racer", "correct horse battery", {"name": "R"})
    # The racer consented to both clients before, so no consent page interrupts.
    for client_id in ("rp-a", "rp-b"):
        await ConsentStore(redis, 3600).grant(user.sub, client_id, DEFAULT_SCOPE)

    first = start_server(redis_server, wait=False)
    servers = [first] + [
        start_server(redis_server, issuer=first.issuer, wait=False) for _ in range(2)
    ]
    for server in servers:
        server.wait_ready()

    rp = RelyingParty(first.issuer, "rp-a", SECRET, "client_secret_basic")
    await rp.discover()
    browser = Browser.open(first.url)
    reply = await browser.authorize(
        rp.authorization_url(), "racer", "correct horse battery"
    )
    assert reply.status == 302
    yield servers, rp, browser, user
    await browser.close()


async def _new_code(rp: RelyingParty, browser: Browser) -> str:
    """A fresh code through single sign-on: the browser is already signed in."""
    reply = await browser.get(rp.authorization_url())
    assert reply.status == 302
    return query_of(reply.headers["Location"])["code"]


async def _race(
    servers: list[ServerProcess], path: str, form: dict[str, str], client_id: str
) -> list[httpx.Response]:
    """POST the same form RACERS times at once, round-robin over the processes."""
    clients = [
        httpx.AsyncClient(base_url=servers[i % len(servers)].url) for i in range(RACERS)
    ]
    try:
        # Open every connection first so the POSTs leave together.
        await asyncio.gather(*(client.get("/health/live") for client in clients))
        headers = {"Authorization": basic_auth(client_id, SECRET)}
        return list(
            await asyncio.gather(
                *(client.post(path, data=form, headers=headers) for client in clients)
            )
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def _outcomes(replies: list[httpx.Response]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for reply in replies:
        if reply.status_code == 200:
            counts["ok"] += 1
        elif reply.status_code >= 500:
            counts[f"status {reply.status_code}"] += 1
        else:
            counts[reply.json().get("error", "?")] += 1
    return counts


async def _userinfo_status(server: ServerProcess, access_token: str) -> int:
    async with httpx.AsyncClient() as http:
        reply = await http.get(
            server.url + "/userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )
    return reply.status_code


async def test_code_redeemed_once_under_race(cluster):
    servers, rp, browser, _ = cluster
    totals: Counter[str] = Counter()

    for _ in range(ROUNDS):
        code = await _new_code(rp, browser)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": rp.verifier or "",
        }
        replies = await _race(servers, "/token", form, "rp-a")
        counts = _outcomes(replies)
        totals.update(counts)
        winner = next(reply for reply in replies if reply.status_code == 200)
        # The losing attempts were replays: RFC 6749 4.1.2 has the tokens of
        # the first redemption revoked.
        status = await _userinfo_status(servers[0], winner.json()["access_token"])

        assert counts == Counter({"ok": 1, "invalid_grant": RACERS - 1}), counts
        assert status == 401

    assert totals["ok"] == ROUNDS


async def _fresh_tokens(servers, rp, browser) -> dict:
    code = await _new_code(rp, browser)
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            servers[1].url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": rp.verifier or "",
            },
            headers={"Authorization": basic_auth("rp-a", SECRET)},
        )
    assert reply.status_code == 200
    return reply.json()


async def test_refresh_token_single_use_under_race(cluster):
    servers, rp, browser, _ = cluster

    for _ in range(ROUNDS):
        tokens = await _fresh_tokens(servers, rp, browser)
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        replies = await _race(servers, "/token", form, "rp-a")
        counts = _outcomes(replies)
        winners = [reply.json() for reply in replies if reply.status_code == 200]
        after = await _race(
            servers[:1],
            "/token",
            {
                "grant_type": "refresh_token",
                "refresh_token": winners[0]["refresh_token"],
            }
            if winners
            else form,
            "rp-a",
        )

        assert counts["ok"] <= 1, counts
        assert set(counts) <= {"ok", "invalid_grant"}, counts
        assert counts["invalid_grant"] >= RACERS - 1
        # Presenting the rotated-out token again is reuse: the grant is revoked,
        # so even the winner's new refresh token is dead.
        assert all(reply.status_code == 400 for reply in after)


async def test_two_clients_log_in_one_user_at_once(cluster):
    servers, rp, browser, _ = cluster
    other = RelyingParty(rp.issuer, "rp-b", SECRET, "client_secret_basic")
    other.metadata = dict(rp.metadata)

    for round_number in range(ROUNDS):
        parties = [rp, other]
        urls = [party.authorization_url() for party in parties]
        replies = await asyncio.gather(
            *(
                browser.session.get(
                    url.replace(rp.issuer, servers[(round_number + i) % 3].url),
                    allow_redirects=False,
                )
                for i, url in enumerate(urls)
            )
        )
        codes = [query_of(reply.headers["Location"])["code"] for reply in replies]
        tokens = []
        for party, code, server in zip(parties, codes, servers, strict=False):
            async with httpx.AsyncClient() as http:
                reply = await http.post(
                    server.url + "/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                        "code_verifier": party.verifier or "",
                    },
                    headers={"Authorization": basic_auth(party.client_id, SECRET)},
                )
            tokens.append(reply)

        assert [reply.status for reply in replies] == [302, 302]
        assert [reply.status_code for reply in tokens] == [200, 200]


async def test_refresh_during_userinfo_loses_nothing(cluster):
    servers, rp, browser, _ = cluster

    for _ in range(ROUNDS):
        tokens = await _fresh_tokens(servers, rp, browser)
        async with (
            httpx.AsyncClient(base_url=servers[0].url) as first,
            httpx.AsyncClient(base_url=servers[2].url) as second,
        ):
            refresh, userinfo = await asyncio.gather(
                first.post(
                    "/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": tokens["refresh_token"],
                    },
                    headers={"Authorization": basic_auth("rp-a", SECRET)},
                ),
                second.get(
                    "/userinfo",
                    headers={"Authorization": f"Bearer {tokens['access_token']}"},
                ),
            )
        new_access = refresh.json().get("access_token", "")

        # A refresh revokes the grant's earlier access tokens, so userinfo with
        # the old one succeeds only if it ran before the refresh committed.
        assert refresh.status_code == 200
        assert userinfo.status_code in (200, 401)
        assert await _userinfo_status(servers[1], new_access) == 200
