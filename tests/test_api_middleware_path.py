"""Edge middleware: API requests skip the page middlewares and keep every header."""

from __future__ import annotations

import logging

import httpx
import pytest
from aiohttp import web
from token_flow import add_client

from porchlight_op.web.edge import edge_middleware
from porchlight_op.web.middlewares import Handler
from porchlight_op.web.proxies import parse_networks

ORIGIN = "http://127.0.0.1:9000"  # the origin of support.REDIRECT_URI
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Frame-Options",
    "Referrer-Policy",
    "X-Content-Type-Options",
)
API_REQUESTS = [
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/jwks"),
    ("GET", "/userinfo"),
    ("POST", "/token"),
    ("POST", "/introspect"),
    ("POST", "/revoke"),
    ("GET", "/health/live"),
]


async def send(op, method: str, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.request(method, op.url + path, headers=headers)


@pytest.mark.parametrize(("method", "path"), API_REQUESTS)
async def test_api_response_carries_security_headers(op, method, path):
    reply = await send(op, method, path)

    for name in SECURITY_HEADERS:
        assert name in reply.headers, name
    assert len(reply.headers["X-Request-ID"]) == 16


@pytest.mark.parametrize(("method", "path"), API_REQUESTS)
async def test_api_response_sets_no_cookie(op, method, path):
    reply = await send(op, method, path)

    assert "set-cookie" not in reply.headers


async def test_page_response_sets_session_cookie(op):
    reply = await send(op, "GET", "/login")

    assert reply.status_code == 200
    assert op.settings.cookie_name in reply.cookies
    assert "X-Request-ID" in reply.headers
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name


async def test_api_error_is_json_without_cache(op):
    reply = await send(op, "GET", "/userinfo")

    assert reply.status_code == 401
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"] == "invalid_token"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Pragma"] == "no-cache"


async def test_page_not_found_is_html_page(op):
    reply = await send(op, "GET", "/no-such-page")

    assert reply.status_code == 404
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "There is no page at this address." in reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    assert "X-Request-ID" in reply.headers
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name


async def test_api_not_found_is_not_page(op):
    reply = await send(op, "GET", "/.well-known/no-such-document")

    assert reply.status_code == 404
    assert not reply.headers["Content-Type"].startswith("text/html")
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name


async def test_api_wrong_method_keeps_allow(op):
    reply = await send(op, "GET", "/token")

    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    assert not reply.headers["Content-Type"].startswith("text/html")
    assert "Origin" in reply.headers["Vary"]


async def test_page_wrong_method_is_html_page(op):
    reply = await send(op, "DELETE", "/login")

    assert reply.status_code == 405
    assert "GET" in reply.headers["Allow"]
    assert reply.headers["Content-Type"].startswith("text/html")


async def test_preflight_carries_all_headers(op):
    await add_client(op, "spa")

    reply = await send(
        op,
        "OPTIONS",
        "/userinfo",
        Origin=ORIGIN,
        **{"Access-Control-Request-Method": "GET"},
    )

    assert reply.status_code == 204
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert reply.headers["Vary"] == "Origin"
    assert "X-Request-ID" in reply.headers
    assert "set-cookie" not in reply.headers
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name


async def test_api_log_line_has_response_request_id(op, caplog):
    caplog.set_level(logging.INFO, logger="porchlight_op.web")

    async with httpx.AsyncClient() as http:
        reply = await http.post(
            op.url + "/token",
            data={"grant_type": "client_credentials"},
            auth=("nobody", "wrong-secret"),
        )

    assert reply.status_code == 401
    request_id = reply.headers["X-Request-ID"]
    assert f"client authentication failed request_id={request_id}" in caplog.text


# -- the middleware on its own, in a small application --


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {"remote": request.remote, "scheme": request.scheme, "host": request.host}
    )


def _recording(calls: list[str]):
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        calls.append(request.path)
        return await handler(request)

    return record


async def test_page_middlewares_skip_api_paths(aiohttp_client):
    calls: list[str] = []
    app = web.Application(middlewares=[edge_middleware((), [_recording(calls)])])
    app.router.add_get("/health/live", _echo)
    app.router.add_get("/login", _echo)
    client = await aiohttp_client(app)

    api = await client.get("/health/live")
    page = await client.get("/login")

    assert api.status == 200
    assert page.status == 200
    assert calls == ["/login"]


async def test_page_middlewares_run_outermost_first(aiohttp_client):
    calls: list[str] = []
    outer, inner = _recording(calls), _recording(calls)

    @web.middleware
    async def mark(request: web.Request, handler: Handler) -> web.StreamResponse:
        calls.append("inner")
        return await handler(request)

    app = web.Application(middlewares=[edge_middleware((), [outer, mark, inner])])
    app.router.add_get("/login", _echo)
    client = await aiohttp_client(app)

    await client.get("/login")

    assert calls == ["/login", "inner", "/login"]


FORWARDED = {
    "X-Forwarded-For": "198.51.100.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "id.example.org",
}


@pytest.mark.parametrize("path", ["/health/live", "/login"])
async def test_trusted_proxy_headers_apply_on_every_path(aiohttp_client, path):
    networks = parse_networks(["127.0.0.1"])
    app = web.Application(middlewares=[edge_middleware(networks, [])])
    app.router.add_get(path, _echo)
    client = await aiohttp_client(app)

    seen = await (await client.get(path, headers=FORWARDED)).json()

    assert seen["remote"] == "198.51.100.1"
    assert seen["scheme"] == "https"
    assert seen["host"] == "id.example.org"


@pytest.mark.parametrize("path", ["/health/live", "/login"])
async def test_untrusted_peer_headers_ignored_on_every_path(aiohttp_client, path):
    networks = parse_networks(["10.0.0.0/8"])
    app = web.Application(middlewares=[edge_middleware(networks, [])])
    app.router.add_get(path, _echo)
    client = await aiohttp_client(app)

    seen = await (await client.get(path, headers=FORWARDED)).json()

    assert seen["remote"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] != "id.example.org"
