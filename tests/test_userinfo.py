"""Userinfo endpoint: bearer token presentation (RFC 6750) and claims per scope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from support import REDIRECT_URI, basic_auth, pkce_pair, query_of

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Reply:
    """A userinfo reply, read in full."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def call_userinfo(
    op,
    method: str = "GET",
    token: str | None = None,
    form: dict[str, str] | None = None,
) -> Reply:
    """Call /userinfo with the token in the Authorization header, a form, or both."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = None
    if form is not None:
        headers["Content-Type"] = FORM_TYPE
        body = urlencode(form).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, op.url + "/userinfo", data=body, headers=headers) as r,
    ):
        return Reply(r.status, r.headers, await r.text())


async def access_token_for(op, browser, scope: str) -> str:
    """Log alice in for client `rp` with `scope` and redeem the code."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = op.url + "/authorization?" + urlencode(params)
    reply = await browser.authorize(url, "alice", PASSWORD)
    code = query_of(reply.headers["Location"])["code"]

    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    headers = {"Authorization": basic_auth("rp", SECRET)}
    async with aiohttp.ClientSession() as http:
        response = await http.post(op.url + "/token", data=form, headers=headers)
        assert response.status == 200
        token: str = (await response.json())["access_token"]
    return token


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
async def token(op, browser, alice) -> str:
    await op.add_client("rp", secret=SECRET)
    return await access_token_for(op, browser, "openid profile email")


# -- presenting the token (RFC 6750 2) --


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_bearer_header_accepted(op, alice, token, method):
    reply = await call_userinfo(op, method, token=token)

    assert reply.status == 200
    assert reply.json()["sub"] == alice.sub


async def test_form_body_token_accepted(op, alice, token):
    reply = await call_userinfo(op, "POST", form={"access_token": token})

    assert reply.status == 200
    assert reply.json()["sub"] == alice.sub


async def test_token_in_header_and_body_rejected(op, token):
    reply = await call_userinfo(op, "POST", token=token, form={"access_token": token})

    assert reply.status == 400
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_missing_token_challenged(op, method):
    reply = await call_userinfo(op, method)

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    # RFC 6750 3.1: no error code when the request carried no credentials.
    assert "error=" not in reply.headers["WWW-Authenticate"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_bad_token_rejected(op, token, method):
    reply = await call_userinfo(op, method, token=token[:-4] + "AAAA")

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


async def test_garbage_token_rejected(op):
    reply = await call_userinfo(op, token="not-a-token")

    assert reply.status == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


async def test_non_bearer_scheme_rejected(op):
    headers = {"Authorization": basic_auth("rp", SECRET)}
    async with (
        aiohttp.ClientSession() as http,
        http.get(op.url + "/userinfo", headers=headers) as response,
    ):
        status = response.status
        challenge = response.headers["WWW-Authenticate"]

    assert status == 400
    assert challenge.startswith("Bearer")
    assert 'error="invalid_request"' in challenge


async def test_query_token_ignored(op, token):
    async with (
        aiohttp.ClientSession() as http,
        http.get(op.url + "/userinfo", params={"access_token": token}) as response,
    ):
        status = response.status

    # RFC 9700 2.4: access tokens in URIs end up in logs and Referer headers.
    assert status == 401


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_reply_not_cached(op, token, method):
    reply = await call_userinfo(op, method, token=token)

    assert reply.headers["Cache-Control"] == "no-store"


async def test_error_reply_not_cached(op):
    reply = await call_userinfo(op, token="not-a-token")

    assert reply.headers["Cache-Control"] == "no-store"


# -- claims released per scope (OIDC Core 5.4) --


async def test_openid_scope_releases_only_sub(op, browser, alice):
    await op.add_client("rp", secret=SECRET)
    token = await access_token_for(op, browser, "openid")

    reply = await call_userinfo(op, token=token)

    assert reply.json() == {"sub": alice.sub}


async def test_profile_scope_releases_name(op, browser, alice):
    await op.add_client("rp", secret=SECRET)
    token = await access_token_for(op, browser, "openid profile")

    claims = (await call_userinfo(op, token=token)).json()

    assert claims["name"] == "Alice Liddell"
    assert "email" not in claims
    assert "email_verified" not in claims


async def test_email_scope_releases_email(op, browser, alice):
    await op.add_client("rp", secret=SECRET)
    token = await access_token_for(op, browser, "openid email")

    claims = (await call_userinfo(op, token=token)).json()

    assert claims["email"] == "alice@example.org"
    assert claims["email_verified"] is True
    assert "name" not in claims


async def test_unregistered_scope_not_released(op, browser, alice):
    await op.add_client("rp", secret=SECRET, scope=("openid", "profile"))
    token = await access_token_for(op, browser, "openid profile email")

    claims = (await call_userinfo(op, token=token)).json()

    assert claims["name"] == "Alice Liddell"
    assert "email" not in claims
