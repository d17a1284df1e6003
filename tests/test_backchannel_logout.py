"""Back-Channel Logout 1.0: logout tokens POSTed to a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from authlib.jose import JsonWebKey, jwt
from conftest import OP, TEST_ARGON2
from support import REDIRECT_URI, Browser, RelyingParty, free_port

from porchlight_op.accounts.service import Accounts
from porchlight_op.app import create_app
from porchlight_op.log import EVENTS
from porchlight_op.models import Client
from porchlight_op.settings import load_settings
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.connection import make_redis

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TIMEOUT = 1.0  # the OP's per-request timeout for deliveries, in seconds
SLOW_RECEIVER_SLEEP = 3.0  # longer than TIMEOUT
WAIT_LIMIT = 20.0  # seconds a test waits for deliveries before it fails


class Receiver:
    """A relying party's back-channel logout endpoint, recording every POST."""

    def __init__(self, delay: float = 0.0, hold: bool = False) -> None:
        self.delay = delay
        self.tokens: list[str] = []
        self.entered = asyncio.Event()
        self.finished = asyncio.Event()
        # With hold, each request waits for release (at most WAIT_LIMIT seconds).
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.tokens.append(str(form["logout_token"]))
        self.entered.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        await asyncio.wait_for(self.release.wait(), WAIT_LIMIT)
        self.finished.set()
        return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def start_receiver(aiohttp_server: Any, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/backchannel", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    return str(server.make_url("/backchannel"))


async def start_op(redis, aiohttp_server, signing_jwks, timeout: float) -> OP:
    """The OP on a loopback HTTP server, with the given back-channel timeout."""
    await redis.set(keys.secret("signing-jwks"), signing_jwks)
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "issuer": f"http://127.0.0.1:{port}",
            "port": port,
            "backchannel_logout_timeout": timeout,
            **TEST_ARGON2,
        },
    )
    server = await aiohttp_server(create_app(settings, redis), port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, redis)


@pytest.fixture
async def op(redis, aiohttp_server, signing_jwks) -> OP:
    """The OP with a short back-channel timeout."""
    return await start_op(redis, aiohttp_server, signing_jwks, TIMEOUT)


@pytest.fixture
async def patient_op(redis, aiohttp_server, signing_jwks) -> OP:
    """The OP with a back-channel timeout longer than any wait in these tests."""
    return await start_op(redis, aiohttp_server, signing_jwks, 3 * WAIT_LIMIT)


async def add_backchannel_client(redis, uri: str, client_id: str = "rp") -> Client:
    client = Client(
        client_id=client_id,
        redirect_uris=(REDIRECT_URI,),
        auth_method="client_secret_basic",
        secret=SECRET,
        scope=("openid", "profile", "offline_access"),
        backchannel_logout_uri=uri,
        backchannel_logout_session_required=True,
    )
    await ClientStore(redis).put(client)
    return client


async def sign_in(issuer: str, browser: Browser, client: Client) -> dict[str, Any]:
    rp = RelyingParty(issuer, client.client_id, client.secret, client.auth_method)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    assert reply.status == 302
    return await rp.redeem(reply.headers["Location"])


async def log_out(browser: Browser, base: str, id_token: str) -> int:
    reply = await browser.get(f"{base}/logout?{urlencode({'id_token_hint': id_token})}")
    return reply.status


async def wait_until(condition: Callable[[], bool], limit: float = WAIT_LIMIT) -> None:
    """Poll the condition every 50 ms; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, without checking it; for counting only."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


def events(caplog, name: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == EVENTS and record.getMessage().startswith(f"event={name} ")
    ]


async def test_logout_token_validates(op, browser, aiohttp_server):
    receiver = Receiver()
    client = await add_backchannel_client(
        op.redis, await start_receiver(aiohttp_server, receiver)
    )
    user = await op.add_user()
    token = await sign_in(op.url, browser, client)
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(op.url + "/jwks")).json()
    id_claims = jwt.decode(token["id_token"], JsonWebKey.import_key_set(jwks))

    assert await log_out(browser, op.url, token["id_token"]) == 200
    await asyncio.wait_for(receiver.entered.wait(), WAIT_LIMIT)

    logout_token = receiver.tokens[0]
    claims = jwt.decode(logout_token, JsonWebKey.import_key_set(jwks))
    claims.validate()
    assert claims.header["typ"] == "logout+jwt"
    assert claims.header["alg"] == "RS256"
    assert claims["iss"] == op.url
    assert claims["aud"] in (client.client_id, [client.client_id])
    assert claims["events"] == {EVENT: {}}
    assert claims["sub"] == user.sub
    assert claims["sid"] == id_claims["sid"]
    assert claims["jti"]
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 300


async def test_slow_receiver_does_not_hold_logout(patient_op, aiohttp_server):
    op = patient_op
    receiver = Receiver(hold=True)
    client = await add_backchannel_client(
        op.redis, await start_receiver(aiohttp_server, receiver)
    )
    await op.add_user()
    first, second = Browser.open(op.url), Browser.open(op.url)
    try:
        first_token = await sign_in(op.url, first, client)
        second_token = await sign_in(op.url, second, client)
        await asyncio.wait_for(
            log_out(first, op.url, first_token["id_token"]), WAIT_LIMIT
        )
        await asyncio.wait_for(receiver.entered.wait(), WAIT_LIMIT)

        status = await asyncio.wait_for(
            log_out(second, op.url, second_token["id_token"]), WAIT_LIMIT
        )

        assert status == 200
        assert not receiver.finished.is_set()
    finally:
        receiver.release.set()
        await first.close()
        await second.close()


async def test_slow_receiver_gets_bounded_retries(op, browser, aiohttp_server, caplog):
    caplog.set_level(logging.INFO, logger=EVENTS)
    receiver = Receiver(delay=SLOW_RECEIVER_SLEEP)
    client = await add_backchannel_client(
        op.redis, await start_receiver(aiohttp_server, receiver)
    )
    await op.add_user()
    token = await sign_in(op.url, browser, client)

    await log_out(browser, op.url, token["id_token"])
    await wait_until(lambda: bool(events(caplog, "backchannel_logout_dropped")))

    assert len(receiver.tokens) == 3
    failed = events(caplog, "backchannel_logout_failed")
    assert len(failed) == 2
    assert all("reason=timed_out" in line for line in failed)
    dropped = events(caplog, "backchannel_logout_dropped")
    assert "attempt=3" in dropped[0]
    assert token["id_token"] not in caplog.text
    assert receiver.tokens[0] not in caplog.text


async def test_dead_receiver_is_dropped_after_retries(op, browser, caplog):
    caplog.set_level(logging.INFO, logger=EVENTS)
    closed_port = free_port()
    client = await add_backchannel_client(
        op.redis, f"http://127.0.0.1:{closed_port}/backchannel"
    )
    await op.add_user()
    token = await sign_in(op.url, browser, client)

    status = await log_out(browser, op.url, token["id_token"])
    await wait_until(lambda: bool(events(caplog, "backchannel_logout_dropped")))

    assert status == 200
    assert len(events(caplog, "backchannel_logout_failed")) == 2
    assert len(events(caplog, "logout")) == 1
    assert "attempt=3" in events(caplog, "backchannel_logout_dropped")[0]


async def test_client_without_backchannel_uri_gets_nothing(
    op, browser, aiohttp_server, caplog
):
    caplog.set_level(logging.INFO, logger=EVENTS)
    receiver = Receiver()
    await start_receiver(aiohttp_server, receiver)
    client = await op.add_client("plain-rp")
    await op.add_user()
    token = await sign_in(op.url, browser, client)

    await log_out(browser, op.url, token["id_token"])

    assert "backchannel_queued=0" in events(caplog, "logout")[0]
    assert await op.redis.zcard(keys.backchannel_logout_jobs()) == 0


async def provision(redis_url: str, receiver_uri: str) -> Client:
    settings = load_settings(environ={}, overrides=TEST_ARGON2)
    redis = make_redis(redis_url, settings)
    try:
        await redis.flushdb()
        client = await add_backchannel_client(redis, receiver_uri)
        await Accounts(redis, settings).create_user("alice", PASSWORD)
    finally:
        await redis.aclose()
    return client


async def test_two_processes_deliver_each_token_once(
    redis_server, start_server, aiohttp_server
):
    receiver = Receiver()
    client = await provision(
        redis_server, await start_receiver(aiohttp_server, receiver)
    )
    env = {"PORCHLIGHT_BACKCHANNEL_LOGOUT_TIMEOUT": str(TIMEOUT)}
    first = start_server(redis_server, env=env)
    second = start_server(redis_server, issuer=first.issuer, env=env)
    browsers = [Browser.open(first.url) for _ in range(4)]
    try:
        tokens = [await sign_in(first.issuer, b, client) for b in browsers]
        for number, (browser, token) in enumerate(zip(browsers, tokens, strict=True)):
            base = (first, second)[number % 2].url
            assert await log_out(browser, base, token["id_token"]) == 200

        await wait_until(lambda: len(receiver.tokens) >= len(browsers))
        # Both processes poll every 0.5 s; a duplicate would arrive by then.
        await asyncio.sleep(1.5)
    finally:
        for browser in browsers:
            await browser.close()

    jtis = Counter(unverified_claims(token)["jti"] for token in receiver.tokens)
    assert len(receiver.tokens) == len(browsers)
    assert len(jtis) == len(browsers)
    assert set(jtis.values()) == {1}
