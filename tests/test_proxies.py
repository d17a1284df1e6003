"""X-Forwarded-* headers count only when the peer is a trusted proxy."""

from __future__ import annotations

from aiohttp import web

from porchlight_op.web.proxies import client_address, forwarded_headers, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "127.0.0.1"])


def test_client_address_ignores_headers_from_untrusted_peer():
    assert client_address("203.0.113.9", "198.51.100.1", PROXIES) == "203.0.113.9"


def test_client_address_skips_trusted_hops_from_the_right():
    chain = "198.51.100.1, 203.0.113.7, 10.1.2.3"
    assert client_address("127.0.0.1", chain, PROXIES) == "203.0.113.7"


def test_client_address_without_header_is_the_peer():
    assert client_address("127.0.0.1", None, PROXIES) == "127.0.0.1"


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {"remote": request.remote, "scheme": request.scheme, "host": request.host}
    )


async def _seen(aiohttp_client, networks, headers) -> dict:
    app = web.Application(middlewares=[forwarded_headers(networks)])
    app.router.add_get("/", _echo)
    client = await aiohttp_client(app)
    response = await client.get("/", headers=headers)
    return await response.json()


FORWARDED = {
    "X-Forwarded-For": "198.51.100.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "id.example.org",
}


async def test_trusted_proxy_headers_are_applied(aiohttp_client):
    seen = await _seen(aiohttp_client, PROXIES, FORWARDED)

    assert seen["remote"] == "198.51.100.1"
    assert seen["scheme"] == "https"
    assert seen["host"] == "id.example.org"


async def test_untrusted_peer_headers_are_ignored(aiohttp_client):
    seen = await _seen(aiohttp_client, parse_networks(["10.0.0.0/8"]), FORWARDED)

    assert seen["remote"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] != "id.example.org"


async def test_issuer_does_not_follow_forwarded_host(op):
    import httpx

    async with httpx.AsyncClient() as http:
        reply = await http.get(
            op.url + "/.well-known/openid-configuration",
            headers={"X-Forwarded-Host": "evil.example", "Host": "evil.example"},
        )

    assert reply.json()["issuer"] == op.url
    assert "evil" not in reply.text
