"""Edge middleware under hostile request targets, methods and failures."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import OP, TEST_ARGON2
from redis_process import RedisProcess
from support import free_port

from porchlight_op.app import create_app
from porchlight_op.settings import load_settings
from porchlight_op.store.connection import make_redis

TRICK_PATHS = [
    "/token/../login",
    "/token/%2e%2e/login",
    "/token%2F..%2Flogin",
    "//token",
    "//login",
    "/TOKEN",
    "/.well-known/../manage",
    "/.well-known/%2e%2e/manage",
    "/health/..%2Flogin",
    "/jwks/../consent",
    "/userinfo/../../login",
    "/login?x=/token",
    "/./token",
    "/token;x=1",
    "/%2Ftoken",
    "/logi%6E",
    "/%74oken",
]


async def _raw(op: OP, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request with the target exactly as given."""
    parts = urlsplit(op.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


@pytest.mark.parametrize("target", TRICK_PATHS)
async def test_trick_path_gets_no_server_error(op: OP, target: str) -> None:
    status, headers, body = await _raw(op, "GET", target)

    assert status < 500, body[:200]
    assert headers.get("x-content-type-options") == "nosniff"
    assert b"Traceback" not in body


async def test_login_by_encoded_path_keeps_session(op: OP) -> None:
    status, headers, _ = await _raw(op, "GET", "/logi%6E")

    assert status == 200
    assert op.settings.cookie_name in headers.get("set-cookie", "")


def _route_paths(op: OP) -> list[str]:
    assert op.app is not None
    paths = set()
    for resource in op.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path is not None:
            paths.add(path.replace("{token}", "abc").replace("{sub}", "nobody"))
    return sorted(paths)


METHODS = ("GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE")
EVERY_RESPONSE_HEADERS = ("x-content-type-options", "x-frame-options", "x-request-id")


async def test_every_route_and_method_carries_headers(op: OP) -> None:
    missing = []
    for path in _route_paths(op):
        for method in METHODS:
            status, headers, _ = await _raw(op, method, path)
            assert status < 500, (method, path, status)
            for name in EVERY_RESPONSE_HEADERS:
                if name not in headers:
                    missing.append((method, path, status, name))

    assert not missing


@pytest.fixture
async def op_without_redis(aiohttp_server: Any) -> AsyncIterator[OP]:
    """The OP on a Redis that is killed once the OP has started."""
    server = RedisProcess(Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp")))
    server.start()
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={"issuer": f"http://127.0.0.1:{port}", "port": port, **TEST_ARGON2},
    )
    client = make_redis(server.url, settings)
    app = create_app(settings, client)
    http = await aiohttp_server(app, port=port)
    server.kill()
    yield OP(str(http.make_url("")).rstrip("/"), settings, client, app)
    await client.aclose()


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/login", 503),
        ("GET", "/manage", 503),
        ("POST", "/token", 400),
        ("GET", "/userinfo", 401),
        ("GET", "/no-such-page", 404),
        ("GET", "/token", 405),
    ],
)
async def test_headers_while_redis_is_down(
    op_without_redis: OP, method: str, target: str, expected: int
) -> None:
    status, headers, body = await _raw(op_without_redis, method, target)

    assert status == expected, body[:200]
    for name in EVERY_RESPONSE_HEADERS:
        assert name in headers
