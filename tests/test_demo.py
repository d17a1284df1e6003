"""`porchlight-op demo` with its embedded Redis, across a restart."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import ServerProcess, log_in
from support import Browser, RelyingParty, query_of

from porchlight_op.store.embedded import EmbeddedRedis

DETAIL_KEYS = {
    "client_id",
    "client_secret",
    "username",
    "password",
    "discovery_url",
    "authorization_url",
    "code_verifier",
}
DEMO_EMAIL = "demo@example.com"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data_dir under /tmp, short enough for the embedded Redis socket path."""
    directory = Path(tempfile.mkdtemp(prefix="pl-demo-", dir="/tmp"))
    yield directory
    # A server that outlived its demo process would keep running forever, so
    # shut it down before the directory goes away.
    embedded = EmbeddedRedis(directory)
    if socket_accepts(embedded.socket_path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1.0)
            sock.connect(str(embedded.socket_path))
            sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
    shutil.rmtree(directory, ignore_errors=True)


def socket_accepts(path: Path) -> bool:
    """Return whether some process accepts connections on the unix socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def processes_naming(path: Path) -> list[str]:
    """Return the command lines of processes that mention path, from /proc."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in text:
            found.append(text.strip())
    return found


def demo_details(server: ServerProcess) -> dict[str, Any]:
    """Parse the JSON document that `demo --json` printed before serving."""
    details: dict[str, Any] = json.loads(server.stdout())
    assert set(details) == DETAIL_KEYS
    return details


def assert_embedded_redis_stopped(data_dir: Path) -> None:
    socket_path = EmbeddedRedis(data_dir).socket_path
    assert not socket_accepts(socket_path), "embedded Redis still accepts connections"
    if Path("/proc").is_dir():
        assert processes_naming(socket_path) == []


async def userinfo_email(rp: RelyingParty, token: dict[str, Any]) -> str:
    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200
    return str(info.json()["email"])


@pytest.mark.slow
async def test_demo_credentials_survive_restart(start_server, data_dir):
    first = start_server(None, command="demo", args=["--json"], data_dir=data_dir)
    details = demo_details(first)
    assert details["discovery_url"].startswith(first.issuer + "/")
    assert "development only" in first.stderr()

    # Follow the printed authorization URL and redeem with the printed verifier.
    printed = query_of(details["authorization_url"])
    rp = RelyingParty(
        first.issuer,
        details["client_id"],
        details["client_secret"],
        "client_secret_basic",
        redirect_uri=printed["redirect_uri"],
        verifier=details["code_verifier"],
        nonce=printed["nonce"],
        state=printed["state"],
    )
    await rp.discover()
    browser = Browser.open(first.url)
    try:
        reply = await browser.authorize(
            details["authorization_url"], details["username"], details["password"]
        )
    finally:
        await browser.close()
    assert reply.status == 302
    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert await userinfo_email(rp, token) == DEMO_EMAIL
    refreshed = await rp.refresh(token["refresh_token"])
    assert await userinfo_email(rp, refreshed) == DEMO_EMAIL

    first.stop_cleanly()
    assert_embedded_redis_stopped(data_dir)

    second = start_server(
        None, command="demo", args=["--json"], data_dir=data_dir, port=first.port
    )
    again = demo_details(second)
    assert again["client_secret"] == details["client_secret"]
    assert again["password"] == details["password"]

    rp = RelyingParty(
        second.issuer,
        details["client_id"],
        details["client_secret"],
        "client_secret_basic",
    )
    await rp.discover()
    location = await log_in(second, rp, details["username"], details["password"])
    token = await rp.redeem(location)
    claims_again = await rp.validate_id_token(token["id_token"])
    assert claims_again["sub"] == claims["sub"]
    assert await userinfo_email(rp, token) == DEMO_EMAIL

    second.stop_cleanly()
    assert_embedded_redis_stopped(data_dir)
