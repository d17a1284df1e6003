"""The management sign-in rejects every ID token and callback it must not trust.

The management area is a client of the OP. Here its token and JWKS calls go to
a test server on 127.0.0.1 that plays those two endpoints, as a third party
that can hand out hostile ID tokens would. When the test sets no token, that
server forwards the call to the real OP, so replays reach the real /token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from authlib.jose import JsonWebKey, jwt
from conftest import OP, TEST_ARGON2
from support import Browser, free_port, hidden_inputs, query_of

from porchlight_op.app import create_app
from porchlight_op.log import WEB
from porchlight_op.manage import login
from porchlight_op.manage.client import MANAGEMENT_CLIENT
from porchlight_op.settings import load_settings
from porchlight_op.store import keys

CLIENT_ID = "porchlight-manage"
PASSWORD = "correct horse battery"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class TokenEndpoint:
    """A stand-in for the OP's /token and /jwks that serves what a test sets."""

    url: str = ""
    upstream: str = ""  # the real OP, used while id_token is None
    jwks: dict[str, Any] | None = None
    id_token: str | None = None
    failure: web.Response | None = None  # sent by /token in place of tokens
    calls: list[str] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        self.calls.append("token")
        form = await request.post()
        if self.failure is not None:
            return self.failure
        if self.id_token is None:
            headers = {"Authorization": request.headers.get("Authorization", "")}
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
                async with http.post(
                    self.upstream + "/token", data=dict(form), headers=headers
                ) as reply:
                    body = await reply.read()
                    return web.Response(
                        body=body, status=reply.status, content_type="application/json"
                    )
        return web.json_response(
            {
                "access_token": "opaque",
                "token_type": "Bearer",
                "id_token": self.id_token,
            }
        )

    async def keys(self, request: web.Request) -> web.Response:
        self.calls.append("jwks")
        if self.jwks is None:
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
                async with http.get(self.upstream + "/jwks") as reply:
                    return web.json_response(await reply.json())
        return web.json_response(self.jwks)


@dataclass
class Flow:
    """A management sign-in stopped at the callback: its URL, state and nonce."""

    callback_url: str
    code: str
    state: str
    nonce: str


@pytest.fixture(scope="module")
def signing_key() -> Any:
    """The RSA key the stand-in endpoint signs ID tokens with."""
    return JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "t1"})


@pytest.fixture(scope="module")
def foreign_key() -> Any:
    """An RSA key that no JWKS in these tests publishes."""
    return JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "t1"})


@pytest.fixture
async def endpoint(aiohttp_server: Any) -> TokenEndpoint:
    """The stand-in token and JWKS endpoints on a loopback server."""
    stand_in = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/token", stand_in.token)
    app.router.add_get("/jwks", stand_in.keys)
    server = await aiohttp_server(app, host="127.0.0.1")
    stand_in.url = str(server.make_url("")).rstrip("/")
    return stand_in


@pytest.fixture
async def op(
    redis: Any, aiohttp_server: Any, signing_jwks: bytes, endpoint: TokenEndpoint
) -> OP:
    """The OP, with its management area calling the stand-in endpoints."""
    await redis.set(keys.secret("signing-jwks"), signing_jwks)
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={"issuer": f"http://127.0.0.1:{port}", "port": port, **TEST_ARGON2},
    )
    app = create_app(settings, redis)
    app[login.ENDPOINT_BASE] = endpoint.url
    server = await aiohttp_server(app, port=port)
    endpoint.upstream = settings.issuer
    return OP(str(server.make_url("")).rstrip("/"), settings, redis, app)


@pytest.fixture
def web_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the web layer's log lines at INFO."""
    caplog.set_level(logging.INFO, logger=WEB)
    return caplog


async def start_flow(op: OP, browser: Browser) -> Flow:
    """Sign in at the OP from /manage and stop before the callback."""
    reply = await browser.get(op.url + "/manage")
    authorization = reply.headers["Location"]
    reply = await browser.get(op.url + authorization)
    login_page = await browser.get(op.url + reply.headers["Location"])
    form = hidden_inputs(await login_page.text())
    form.update({"username": "alice", "password": PASSWORD})
    reply = await browser.post_form(op.url + "/login", form)
    callback_url = reply.headers["Location"]
    assert callback_url.startswith(op.url + "/manage/callback?")
    params = query_of(callback_url)
    nonce = query_of(authorization)["nonce"]
    return Flow(callback_url, params["code"], params["state"], nonce)


def good_claims(op: OP, sub: str, nonce: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": op.url,
        "sub": sub,
        "aud": CLIENT_ID,
        "nonce": nonce,
        "iat": now,
        "exp": now + 300,
    }


def sign(claims: dict[str, Any], key: Any) -> str:
    header = {"alg": "RS256", "kid": key.as_dict()["kid"]}
    token: bytes = jwt.encode(header, claims, key)
    return token.decode()


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def publish(endpoint: TokenEndpoint, key: Any) -> None:
    endpoint.jwks = {"keys": [key.as_dict(is_private=False)]}


async def is_managed(op: OP, browser: Browser) -> bool:
    """Return whether the browser has a management login (the page opens)."""
    reply = await browser.get(op.url + "/manage/credentials")
    return reply.status == 200


async def assert_rejected(reply: aiohttp.ClientResponse, message: str) -> None:
    body = await reply.text()
    assert reply.status == 400
    assert "Sign-in failed" in body
    assert message in body
    assert "Traceback" not in body


def assert_logged(log: pytest.LogCaptureFixture, line: str, *secrets: str) -> None:
    """A log line contains `line`, no line contains a secret, none is an error."""
    messages = [record.getMessage() for record in log.records]
    assert any(line in message for message in messages), messages
    for secret in secrets:
        assert not any(secret in message for message in messages)
    assert not any(record.levelno >= logging.ERROR for record in log.records)


async def serve_rejected_token(
    op: OP,
    browser: Browser,
    endpoint: TokenEndpoint,
    log: pytest.LogCaptureFixture,
    token: str,
    flow: Flow,
    message: str,
    line: str,
) -> None:
    """Serve `token` to the callback and check that the sign-in is rejected."""
    endpoint.id_token = token
    reply = await browser.get(flow.callback_url)

    await assert_rejected(reply, message)
    assert endpoint.calls[:1] == ["token"]
    assert not await is_managed(op, browser)
    secret = op.app[MANAGEMENT_CLIENT].secret if op.app else ""
    assert_logged(log, line, token, flow.code, flow.state, flow.nonce, secret)


UNVERIFIED = "The ID token could not be verified."
NOT_VALID = "The ID token is not valid for this sign-in."


# -- the stand-in endpoint is used, and a good token signs in --


async def test_good_token_signs_in(op, browser, endpoint, signing_key):
    user = await op.add_user()
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    endpoint.id_token = sign(good_claims(op, user.sub, flow.nonce), signing_key)

    reply = await browser.get(flow.callback_url)

    assert reply.status == 302
    assert reply.headers["Location"] == "/manage/credentials"
    assert endpoint.calls == ["token", "jwks"]
    assert await is_managed(op, browser)


# -- signature --


async def test_token_from_unpublished_key_rejected(
    op, browser, endpoint, web_log, signing_key, foreign_key
):
    user = await op.add_user()
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    token = sign(good_claims(op, user.sub, flow.nonce), foreign_key)

    await serve_rejected_token(
        op, browser, endpoint, web_log, token, flow, UNVERIFIED,
        "management ID token rejected",
    )  # fmt: skip


async def test_unsigned_token_rejected(op, browser, endpoint, web_log, signing_key):
    user = await op.add_user()
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    claims = good_claims(op, user.sub, flow.nonce)
    token = b64({"alg": "none"}) + "." + b64(claims) + "."

    await serve_rejected_token(
        op, browser, endpoint, web_log, token, flow, UNVERIFIED,
        "management ID token rejected",
    )  # fmt: skip


async def test_hmac_token_keyed_with_public_key_rejected(
    op, browser, endpoint, web_log, signing_key
):
    user = await op.add_user()
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    public_pem = signing_key.as_pem(is_private=False)
    claims = good_claims(op, user.sub, flow.nonce)
    # Built by hand: Authlib itself refuses to use a PEM key as an HMAC secret.
    signing_input = b64({"alg": "HS256"}) + "." + b64(claims)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    await serve_rejected_token(
        op, browser, endpoint, web_log, token, flow, UNVERIFIED,
        "management ID token rejected",
    )  # fmt: skip


async def test_tampered_payload_rejected(op, browser, endpoint, web_log, signing_key):
    victim = await op.add_user()
    other = await op.add_user("mallory")
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    header, _, signature = sign(
        good_claims(op, other.sub, flow.nonce), signing_key
    ).split(".")
    token = ".".join([header, b64(good_claims(op, victim.sub, flow.nonce)), signature])

    await serve_rejected_token(
        op, browser, endpoint, web_log, token, flow, UNVERIFIED,
        "management ID token rejected",
    )  # fmt: skip


# -- claims --


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "http://127.0.0.1:1/other-issuer"),
        ("aud", ["another-client", "a-third-client"]),
        ("nonce", "not-the-nonce-of-this-flow"),
        ("exp", 1),
        ("sub", None),
    ],
)
async def test_signed_token_with_bad_claim_rejected(
    op, browser, endpoint, web_log, signing_key, claim, value
):
    user = await op.add_user()
    flow = await start_flow(op, browser)
    publish(endpoint, signing_key)
    claims = good_claims(op, user.sub, flow.nonce)
    if value is None:
        del claims[claim]
    else:
        claims[claim] = value
    token = sign(claims, signing_key)

    await serve_rejected_token(
        op, browser, endpoint, web_log, token, flow, NOT_VALID,
        f"management ID token rejected: invalid {claim}",
    )  # fmt: skip


# -- the token endpoint's reply --


@pytest.mark.parametrize(
    ("failure", "line"),
    [
        (
            web.Response(
                status=502, text="<h1>Bad Gateway</h1>", content_type="text/html"
            ),
            "management token request failed: JSONDecodeError",
        ),
        (
            web.json_response({"error": "invalid_grant"}, status=400),
            "management code redemption failed: error=invalid_grant",
        ),
        (
            web.json_response({"access_token": "opaque", "token_type": "Bearer"}),
            "management code redemption failed: error=None",
        ),
    ],
    ids=["html-502", "invalid-grant", "no-id-token"],
)
async def test_failed_code_redemption_rejected(
    op, browser, endpoint, web_log, failure, line
):
    await op.add_user()
    flow = await start_flow(op, browser)
    endpoint.failure = failure

    reply = await browser.get(flow.callback_url)

    await assert_rejected(reply, "The sign-in could not be completed.")
    assert endpoint.calls[:1] == ["token"]
    assert not await is_managed(op, browser)
    assert_logged(web_log, line, flow.code, flow.state, flow.nonce)


# -- the callback itself --


async def test_callback_state_mismatch_rejected(op, browser, endpoint, web_log):
    await op.add_user()
    flow = await start_flow(op, browser)

    reply = await browser.get(
        op.url + f"/manage/callback?code={flow.code}&state=forged-state"
    )

    await assert_rejected(reply, "does not match this browser")
    assert endpoint.calls == []
    assert not await is_managed(op, browser)
    assert_logged(web_log, "state mismatch", flow.code, flow.state)


async def test_callback_access_denied_rejected(op, browser, endpoint, web_log):
    await op.add_user()
    flow = await start_flow(op, browser)

    reply = await browser.get(
        op.url + f"/manage/callback?error=access_denied&state={flow.state}"
    )

    await assert_rejected(reply, "was not completed")
    assert endpoint.calls == []
    assert not await is_managed(op, browser)
    assert_logged(web_log, "error='access_denied'", flow.code, flow.state)


async def test_callback_error_logged_on_one_line(op, browser, web_log):
    await op.add_user()
    flow = await start_flow(op, browser)
    forged = "access_denied%0Aevent%3Dlogin_succeeded"

    reply = await browser.get(
        op.url + f"/manage/callback?error={forged}&state={flow.state}"
    )

    await assert_rejected(reply, "was not completed")
    messages = [record.getMessage() for record in web_log.records]
    assert not any("\n" in message for message in messages)


async def test_callback_without_flow_rejected(op, browser, endpoint, web_log):
    reply = await browser.get(op.url + "/manage/callback?code=some-code&state=s")

    await assert_rejected(reply, "No sign-in to the management area was in progress")
    assert endpoint.calls == []
    assert not await is_managed(op, browser)
    assert_logged(web_log, "management sign-in failed", "some-code")


async def test_callback_replay_in_same_browser_rejected(op, browser, endpoint, web_log):
    await op.add_user()
    flow = await start_flow(op, browser)
    first = await browser.get(flow.callback_url)
    assert first.status == 302
    assert first.headers["Location"] == "/manage/credentials"

    second = await browser.get(flow.callback_url)

    await assert_rejected(second, "No sign-in to the management area was in progress")
    assert endpoint.calls == ["token", "jwks"]
    assert_logged(web_log, "management sign-in failed", flow.code, flow.state)


async def test_stolen_code_replay_rejected(op, browser, endpoint, web_log):
    await op.add_user()
    flow = await start_flow(op, browser)
    first = await browser.get(flow.callback_url)
    assert first.status == 302
    other = Browser.open(op.url)
    try:
        own = await start_flow(op, other)
        replay = f"{op.url}/manage/callback?code={flow.code}&state={own.state}"

        reply = await other.get(replay)

        await assert_rejected(reply, "The sign-in could not be completed.")
        assert not await is_managed(op, other)
    finally:
        await other.close()
    assert_logged(
        web_log,
        "management code redemption failed: error=invalid_grant",
        flow.code,
        own.code,
        own.state,
    )


# -- the claim checks alone --


def claims_for_unit(nonce: str = "n-1") -> dict[str, Any]:
    return {
        "iss": "http://127.0.0.1:8080",
        "sub": "user-1",
        "aud": CLIENT_ID,
        "nonce": nonce,
        "exp": int(time.time()) + 60,
    }


def test_check_claims_accepts_valid():
    login._check_claims(claims_for_unit(), "http://127.0.0.1:8080", CLIENT_ID, "n-1")


def test_check_claims_accepts_single_audience_list():
    claims = claims_for_unit()
    claims["aud"] = [CLIENT_ID]

    login._check_claims(claims, "http://127.0.0.1:8080", CLIENT_ID, "n-1")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "http://127.0.0.1:8080/"),
        ("aud", "other"),
        ("aud", []),
        ("aud", [CLIENT_ID, "another-client"]),
        ("nonce", "n-2"),
        ("nonce", None),
        ("exp", 0),
        ("exp", "9999999999"),
        ("sub", 42),
        ("sub", None),
    ],
)
def test_check_claims_rejects(claim, value):
    claims = claims_for_unit()
    claims[claim] = value

    with pytest.raises(login.ManageLoginError):
        login._check_claims(claims, "http://127.0.0.1:8080", CLIENT_ID, "n-1")
