"""Hostile or broken input gets a 4xx response, never a 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from support import REDIRECT_URI, basic_auth

from porchlight_op.settings import ClientSettings, SettingsError


@pytest.mark.parametrize(
    "query",
    ["request=a&request=b", "x=%zz", "x=%C0%AF"],
)
async def test_login_page_rejects_malformed_query(op, query):
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{op.url}/login?{query}")

    assert reply.status_code == 400
    assert reply.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"a=%zz"),
        ("application/x-www-form-urlencoded", b"password=%ED%B3%BF"),
        ("application/x-www-form-urlencoded", b"a=" + b"x" * 70000),
    ],
)
async def test_login_post_rejects_malformed_body(op, content_type, body):
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{op.url}/login", content=body, headers={"Content-Type": content_type}
        )

    assert reply.status_code == 400


async def test_token_rejects_non_ascii_basic_credentials(op):
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{op.url}/token",
            content=b"grant_type=authorization_code&code=x",
            headers=[
                (b"Content-Type", b"application/x-www-form-urlencoded"),
                (b"Authorization", "Basic é".encode()),
            ],
        )

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_token_reads_a_body_sent_in_slow_chunks(op):
    client = await op.add_client("rp")

    async def body():
        yield b"grant_type=authorization_code"
        await asyncio.sleep(0.3)
        yield b"&code=not-a-code&redirect_uri=" + REDIRECT_URI.encode()

    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{op.url}/token",
            content=body(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": basic_auth("rp", client.secret or ""),
            },
        )

    # The whole body was read: the code, not its absence, is what failed.
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("max_age", ["%C2%B2", "9" * 5000])
async def test_authorization_rejects_odd_max_age(op, max_age):
    await op.add_client("rp")
    query = (
        f"client_id=rp&redirect_uri={REDIRECT_URI}&response_type=code"
        f"&scope=openid&max_age={max_age}"
    )
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{op.url}/authorization?{query}")

    assert reply.status_code == 302
    assert "error=invalid_request" in reply.headers["Location"]


async def test_authorization_rejects_malformed_claims(op):
    await op.add_client("rp")
    query = (
        f"client_id=rp&redirect_uri={REDIRECT_URI}&response_type=code"
        "&scope=openid&claims=%7Bbad"
    )
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{op.url}/authorization?{query}")

    assert reply.status_code == 302
    assert "error=invalid_request" in reply.headers["Location"]
    assert "codec" not in reply.headers["Location"]


@pytest.mark.parametrize("client_id", ["x;;y", "{tag}", "semi;colon"])
def test_client_ids_that_break_session_keys_are_rejected(client_id):
    with pytest.raises(SettingsError):
        ClientSettings(client_id=client_id, redirect_uris=(REDIRECT_URI,), secret="s")


@pytest.mark.parametrize(
    "uri", ["javascript:alert(1)", "data:text/html,hi", "https://*.example/cb"]
)
def test_script_and_wildcard_redirect_uris_are_rejected(uri):
    with pytest.raises(SettingsError):
        ClientSettings(client_id="rp", redirect_uris=(uri,), secret="s")


async def test_method_not_allowed_page_keeps_allow_header(op):
    async with httpx.AsyncClient() as http:
        reply = await http.put(f"{op.url}/authorization")

    assert reply.status_code == 405
    assert "GET" in reply.headers["Allow"]


async def test_authorization_rejects_oversized_nonce(op):
    await op.add_client("rp")
    query = (
        f"client_id=rp&redirect_uri={REDIRECT_URI}&response_type=code"
        f"&scope=openid&nonce={'n' * 7000}"
    )
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{op.url}/authorization?{query}")
    pending = await op.redis.keys("pl:pending:*")

    assert reply.status_code == 302
    assert "error=invalid_request" in reply.headers["Location"]
    assert pending == []
