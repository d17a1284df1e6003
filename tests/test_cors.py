"""CORS: allowed for registered redirect URI origins on program endpoints only."""

from __future__ import annotations

import httpx
import pytest
from token_flow import add_client

from porchlight_op.store.clients import ClientStore

ORIGIN = "http://127.0.0.1:9000"  # the origin of support.REDIRECT_URI
CORS_PATHS = ["/.well-known/openid-configuration", "/jwks", "/token", "/userinfo"]
CORS_PATHS += ["/revoke"]


async def request(op, method: str, path: str, origin: str, **headers: str):
    async with httpx.AsyncClient() as http:
        return await http.request(
            method, op.url + path, headers={"Origin": origin, **headers}
        )


@pytest.fixture
async def rp(op):
    return await add_client(op, "rp")


@pytest.mark.parametrize("path", CORS_PATHS)
async def test_preflight_allowed_for_registered_origin(op, rp, path):
    reply = await request(
        op,
        "OPTIONS",
        path,
        ORIGIN,
        **{"Access-Control-Request-Method": "POST"},
    )

    assert reply.status_code == 204
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    allowed_headers = reply.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in allowed_headers
    assert "Content-Type" in allowed_headers
    assert "Origin" in reply.headers["Vary"]


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
async def test_get_echoes_registered_origin(op, rp, path):
    reply = await request(op, "GET", path, ORIGIN)

    assert reply.status_code == 200
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in reply.headers["Vary"]


async def test_error_response_carries_cors(op, rp):
    reply = await request(op, "POST", "/token", ORIGIN)

    assert reply.status_code in (400, 401)
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_unregistered_origin_refused(op, rp):
    preflight = await request(op, "OPTIONS", "/token", "http://evil.example")
    reply = await request(op, "GET", "/jwks", "http://evil.example")

    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in reply.headers


async def test_other_port_refused(op, rp):
    reply = await request(op, "GET", "/jwks", "http://127.0.0.1:9001")

    assert "Access-Control-Allow-Origin" not in reply.headers


@pytest.mark.parametrize("path", ["/authorization", "/login", "/", "/introspect"])
async def test_no_cors_on_other_paths(op, rp, path):
    get = await request(op, "GET", path, ORIGIN)
    preflight = await request(op, "OPTIONS", path, ORIGIN)

    assert "Access-Control-Allow-Origin" not in get.headers
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_removed_client_origin_refused(op, rp):
    await ClientStore(op.redis).remove("rp")

    reply = await request(op, "GET", "/jwks", ORIGIN)

    assert "Access-Control-Allow-Origin" not in reply.headers


async def test_shared_origin_kept_while_one_client_remains(op, rp):
    await add_client(op, "rp2", redirect_uris=(ORIGIN + "/other",))
    await ClientStore(op.redis).remove("rp")

    reply = await request(op, "GET", "/jwks", ORIGIN)

    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_default_port_left_out_of_origin(op):
    await add_client(op, "web", redirect_uris=("https://app.example:443/cb",))

    reply = await request(op, "GET", "/jwks", "https://app.example")

    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
