"""The OP as separate OS processes on one Redis: shared state, keys and restarts."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from servers import TEST_ARGON2_ENV, log_in, post_token, route_to
from support import REDIRECT_URI, RelyingParty, basic_auth, free_port, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.models import Client, User
from porchlight_op.settings import load_settings
from porchlight_op.store.clients import ClientStore

CLIENT_ID = "rp-processes"
CLIENT_SECRET = "process-test-secret"
USERNAME = "alice"
PASSWORD = "correct horse battery"
SHUTDOWN_LIMIT = 5.0  # seconds a SIGTERM may take with no request in flight
SECRET_NAMES = (
    "signing-jwks",
    "session-key",
    "session-salt",
    "code-key",
    "refresh-key",
    "cookie-sign-key",
    "cookie-enc-key",
    "symkey",
)


async def provision(redis) -> tuple[Client, User]:
    """Store one confidential client and one user directly in Redis."""
    client = Client(
        client_id=CLIENT_ID,
        redirect_uris=(REDIRECT_URI,),
        auth_method="client_secret_basic",
        secret=CLIENT_SECRET,
        scope=("openid", "profile", "email", "offline_access"),
    )
    await ClientStore(redis).put(client)
    accounts = Accounts(redis, load_settings(environ=TEST_ARGON2_ENV))
    user = await accounts.create_user(
        USERNAME, PASSWORD, {"name": "Alice Liddell", "email": "alice@example.org"}
    )
    return client, user


async def relying_party(issuer: str) -> RelyingParty:
    rp = RelyingParty(issuer, CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
    await rp.discover()
    return rp


async def fetch_json(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    assert reply.status_code == 200, f"GET {url}: {reply.status_code}"
    return reply.json()


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
async def test_code_flow_across_two_processes(redis, redis_server, start_server):
    client, user = await provision(redis)
    a = start_server(redis_server)
    b = start_server(redis_server, issuer=a.issuer)
    rp = await relying_party(a.issuer)

    location = await log_in(a, rp, USERNAME, PASSWORD)
    token = await route_to(rp, b).redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == user.sub
    assert claims["iss"] == a.issuer

    info = await route_to(rp, a).userinfo(token["access_token"])
    assert info.status_code == 200
    assert info.json()["sub"] == user.sub
    assert info.json()["email"] == "alice@example.org"

    refreshed = await route_to(rp, b).refresh(token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]

    again = await route_to(rp, a).userinfo(refreshed["access_token"])
    assert again.status_code == 200
    assert again.json()["sub"] == user.sub

    stale = await post_token(
        a,
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        basic_auth(client.client_id, CLIENT_SECRET),
    )
    assert stale.status_code == 400
    assert stale.json()["error"] == "invalid_grant"


@pytest.mark.slow
@pytest.mark.parametrize("stale_refresh_first", [False, True])
async def test_code_replay_revokes_on_both_processes(
    redis, redis_server, start_server, stale_refresh_first
):
    client, _ = await provision(redis)
    a = start_server(redis_server)
    b = start_server(redis_server, issuer=a.issuer)
    rp = await relying_party(a.issuer)
    location = await log_in(a, rp, USERNAME, PASSWORD)
    token = await route_to(rp, a).redeem(location)
    refreshed = await rp.refresh(token["refresh_token"])
    authorization = basic_auth(client.client_id, CLIENT_SECRET)
    before = await route_to(rp, b).userinfo(refreshed["access_token"])
    assert before.status_code == 200

    if stale_refresh_first:
        stale = await post_token(
            a,
            {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            authorization,
        )
        assert stale.status_code == 400
    replay = await post_token(
        b,
        {
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": rp.verifier or "",
        },
        authorization,
    )

    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"
    # RFC 6749 4.1.2: the OP should revoke the tokens issued for a reused code,
    # and here that includes the ones refreshed since.
    for server in (a, b):
        revoked = await route_to(rp, server).userinfo(refreshed["access_token"])
        assert revoked.status_code == 401, f"access token still valid at {server.name}"


@pytest.mark.slow
async def test_concurrent_first_start_shares_secrets(redis, redis_server, start_server):
    await redis.flushall()
    port = free_port()
    a = start_server(redis_server, port=port, wait=False)
    b = start_server(redis_server, issuer=a.issuer, wait=False)
    a.wait_ready()
    b.wait_ready()
    _, user = await provision(redis)

    jwks_a = await fetch_json(a.url + "/jwks")
    jwks_b = await fetch_json(b.url + "/jwks")
    assert jwks_a == jwks_b
    assert len(jwks_a["keys"]) >= 1
    assert all("d" not in key for key in jwks_a["keys"]), "private key published"

    discovery_path = "/.well-known/openid-configuration"
    discovery_a = await fetch_json(a.url + discovery_path)
    discovery_b = await fetch_json(b.url + discovery_path)
    assert discovery_a == discovery_b
    assert discovery_a["issuer"] == a.issuer

    for name in SECRET_NAMES:
        line = f"server secret created: name={name}\n"
        creations = a.stderr().count(line) + b.stderr().count(line)
        assert creations == 1, f"secret {name} created {creations} times"

    for issuing, redeeming in ((a, b), (b, a)):
        rp = await relying_party(a.issuer)
        location = await log_in(issuing, rp, USERNAME, PASSWORD)
        token = await route_to(rp, redeeming).redeem(location)
        claims = await rp.validate_id_token(token["id_token"])
        assert claims["sub"] == user.sub


@pytest.mark.slow
async def test_restart_between_flow_steps(redis, redis_server, start_server):
    _, user = await provision(redis)
    server = start_server(redis_server)
    rp = await relying_party(server.issuer)

    location = await log_in(server, rp, USERNAME, PASSWORD)
    server.restart()
    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == user.sub

    server.restart()
    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200
    assert info.json()["sub"] == user.sub

    refreshed = await rp.refresh(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    again = await rp.userinfo(refreshed["access_token"])
    assert again.status_code == 200
    assert again.json()["sub"] == user.sub


async def test_sigterm_stops_server_promptly(redis, redis_server, start_server):
    server = start_server(redis_server)

    # An idle keep-alive connection, as a reverse proxy would hold, must not
    # delay the shutdown.
    async with httpx.AsyncClient() as http:
        reply = await http.get(server.url + "/health/live")
        assert reply.status_code == 200
        started = time.monotonic()
        status = server.stop()
        elapsed = time.monotonic() - started

    assert status == 0, server.diagnostics()
    assert not server.killed
    assert elapsed < SHUTDOWN_LIMIT, f"SIGTERM took {elapsed:.1f} s"
    assert not accepts_connections(server.port)
    assert "stopped" in server.stderr().splitlines()[-1]
