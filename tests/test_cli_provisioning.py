"""Clients and users provisioned with the real CLI, then used on a running server."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from servers import ServerProcess, base_environ, log_in, porchlight_executable
from support import REDIRECT_URI, Browser, RelyingParty, basic_auth

CLI_TIMEOUT = 30.0  # seconds for one CLI command
USERNAME = "Zoë Ångström"
PASSWORD = "pässwörd für Zoë ✓"
# A secret with / = ? + : % and a space, all changed by RFC 6749 2.3.1 form-encoding.
# The "%20" fails if the server decodes twice; the final "%" is no valid escape.
ODD_SECRET = "a/b=c?d+e:f%20g h%"
EMAIL = "zoe@example.org"


def cli(
    redis_url: str, cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run porchlight-op with args against the test Redis and return the result."""
    return subprocess.run(
        [porchlight_executable(), *args],
        env=base_environ({"PORCHLIGHT_REDIS_URL": redis_url}),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT,
        check=False,
    )


def cli_json(redis_url: str, cwd: Path, *args: str, stdin: str | None = None) -> Any:
    """Run a command with --json, assert exit 0 and return the parsed output."""
    result = cli(redis_url, cwd, *args, "--json", stdin=stdin)
    assert result.returncode == 0, f"{args}: {result.returncode} {result.stderr}"
    return json.loads(result.stdout)


def add_client(
    redis_url: str, cwd: Path, client_id: str, auth_method: str, *extra: str
) -> dict[str, Any]:
    return cli_json(
        redis_url,
        cwd,
        "client",
        "add",
        client_id,
        "--redirect-uri",
        REDIRECT_URI,
        "--auth-method",
        auth_method,
        *extra,
    )


def add_user(redis_url: str, cwd: Path, username: str, password: str) -> str:
    """Create a user through the CLI and return its sub."""
    created = cli_json(
        redis_url,
        cwd,
        "user",
        "add",
        username,
        "--password-stdin",
        "--email",
        EMAIL,
        "--name",
        username,
        stdin=password + "\n",
    )
    assert created["username"] == username
    return str(created["sub"])


def encode_basic_form(
    auth: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """Send HTTP Basic credentials form-encoded first, as RFC 6749 2.3.1 requires."""
    headers["Authorization"] = basic_auth(auth.client_id, auth.client_secret)
    return uri, headers, body


class FormEncodingRelyingParty(RelyingParty):
    """A relying party whose Basic credentials are form-encoded.

    Authlib 1.9 puts the raw secret in the header, which differs from the
    encoded form for secrets with characters such as "+", "%" or a space.
    """

    def oauth(self) -> Any:
        client = super().oauth()
        client.register_client_auth_method(("client_secret_basic", encode_basic_form))
        return client


async def complete_flow(
    server: ServerProcess, rp: RelyingParty, username: str, password: str, sub: str
) -> None:
    """Log in, redeem, validate the ID token, call userinfo, refresh, call it again."""
    await rp.discover()
    location = await log_in(server, rp, username, password)

    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == sub
    assert claims["nonce"] == rp.nonce

    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200
    assert info.json()["sub"] == sub
    assert info.json()["email"] == EMAIL
    assert info.json()["name"] == USERNAME

    refreshed = await rp.refresh(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    again = await rp.userinfo(refreshed["access_token"])
    assert again.status_code == 200
    assert again.json()["sub"] == sub


async def login_reply_status(
    server: ServerProcess, client_id: str, username: str, password: str
) -> int:
    """Try a login for a public client and return the status of the last reply."""
    rp = RelyingParty(server.url, client_id, None, "none")
    await rp.discover()
    browser = Browser.open(server.url)
    try:
        reply = await browser.authorize(rp.authorization_url(), username, password)
    finally:
        await browser.close()
    return reply.status


@pytest.mark.slow
async def test_cli_clients_complete_code_flow(
    redis, redis_server, start_server, tmp_path
):
    basic = add_client(redis_server, tmp_path, "rp-basic", "client_secret_basic")
    post = add_client(redis_server, tmp_path, "rp-post", "client_secret_post")
    public = add_client(redis_server, tmp_path, "rp-public", "none")
    odd_basic = add_client(
        redis_server,
        tmp_path,
        "rp-odd-basic",
        "client_secret_basic",
        "--secret",
        ODD_SECRET,
    )
    odd_post = add_client(
        redis_server,
        tmp_path,
        "rp-odd-post",
        "client_secret_post",
        "--secret",
        ODD_SECRET,
    )
    sub = add_user(redis_server, tmp_path, USERNAME, PASSWORD)
    assert public["secret"] == "none"
    assert odd_basic["secret"] == "set", "a given secret must not be echoed"
    assert odd_post["secret"] == "set"
    server = start_server(redis_server)

    relying_parties = [
        RelyingParty(server.url, "rp-basic", basic["secret"], "client_secret_basic"),
        RelyingParty(server.url, "rp-post", post["secret"], "client_secret_post"),
        RelyingParty(server.url, "rp-public", None, "none"),
        FormEncodingRelyingParty(
            server.url, "rp-odd-basic", ODD_SECRET, "client_secret_basic"
        ),
        RelyingParty(server.url, "rp-odd-post", ODD_SECRET, "client_secret_post"),
    ]
    for rp in relying_parties:
        await complete_flow(server, rp, USERNAME, PASSWORD, sub)

    # The username matches in any Unicode normalization form and letter case.
    decomposed = unicodedata.normalize("NFD", USERNAME.upper())
    status = await login_reply_status(server, "rp-public", decomposed, PASSWORD)
    assert status == 302


@pytest.mark.slow
async def test_cli_client_list_show_remove(redis, redis_server, start_server, tmp_path):
    add_client(redis_server, tmp_path, "rp-keep", "client_secret_basic")
    add_client(
        redis_server,
        tmp_path,
        "rp-gone",
        "client_secret_post",
        "--secret",
        ODD_SECRET,
        "--name",
        "Tëst client",
    )
    duplicate = cli(
        redis_server,
        tmp_path,
        "client",
        "add",
        "rp-gone",
        "--redirect-uri",
        REDIRECT_URI,
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    listed = cli_json(redis_server, tmp_path, "client", "list")
    assert sorted(row["client_id"] for row in listed) == ["rp-gone", "rp-keep"]
    assert all(row["source"] == "store" for row in listed)

    show = cli(redis_server, tmp_path, "client", "show", "rp-gone", "--json")
    assert show.returncode == 0, show.stderr
    assert ODD_SECRET not in show.stdout
    client_view = json.loads(show.stdout)
    assert client_view["auth_method"] == "client_secret_post"
    assert client_view["secret"] == "set"
    assert client_view["name"] == "Tëst client"
    assert client_view["redirect_uris"] == [REDIRECT_URI]

    server = start_server(redis_server)
    rp = RelyingParty(server.url, "rp-gone", ODD_SECRET, "client_secret_post")
    await rp.discover()
    removed = cli_json(redis_server, tmp_path, "client", "remove", "rp-gone")
    assert removed == {"removed": "rp-gone"}

    browser = Browser.open(server.url)
    try:
        reply = await browser.get(rp.authorization_url())
    finally:
        await browser.close()
    assert reply.status == 400, "a removed client must be unknown to the server"

    missing = cli(redis_server, tmp_path, "client", "show", "rp-gone")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    again = cli(redis_server, tmp_path, "client", "remove", "rp-gone")
    assert again.returncode == 1
    listed = cli_json(redis_server, tmp_path, "client", "list")
    # The server registered its own management client when it started.
    assert sorted(row["client_id"] for row in listed) == [
        "porchlight-manage",
        "rp-keep",
    ]


@pytest.mark.slow
async def test_cli_user_commands_end_to_end(
    redis, redis_server, start_server, tmp_path
):
    add_client(redis_server, tmp_path, "rp-public", "none")
    sub = add_user(redis_server, tmp_path, USERNAME, PASSWORD)
    duplicate = cli(
        redis_server,
        tmp_path,
        "user",
        "add",
        USERNAME.lower(),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    listed = cli_json(redis_server, tmp_path, "user", "list")
    assert listed == [{"sub": sub, "username": USERNAME}]
    for key in (USERNAME, sub):
        show = cli(redis_server, tmp_path, "user", "show", key, "--json")
        assert show.returncode == 0, show.stderr
        assert PASSWORD not in show.stdout
        assert "argon2" not in show.stdout
        user_view = json.loads(show.stdout)
        assert user_view["sub"] == sub
        assert user_view["password"] == "set"
        assert user_view["claims"]["email"] == EMAIL

    server = start_server(redis_server)
    new_password = "nöues Passwort ✓✓"
    changed = cli_json(
        redis_server,
        tmp_path,
        "user",
        "set-password",
        USERNAME,
        "--password-stdin",
        stdin=new_password + "\n",
    )
    assert changed == {"sub": sub}
    old = await login_reply_status(server, "rp-public", USERNAME, PASSWORD)
    assert old == 200, "the old password must show the login form again"
    new = await login_reply_status(server, "rp-public", USERNAME, new_password)
    assert new == 302

    removed = cli_json(redis_server, tmp_path, "user", "remove", sub)
    assert removed == {"removed": sub}
    removed_user_status = await login_reply_status(
        server, "rp-public", USERNAME, new_password
    )
    assert removed_user_status == 200, "a removed user must not log in"
    missing = cli(redis_server, tmp_path, "user", "show", USERNAME)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    assert cli_json(redis_server, tmp_path, "user", "list") == []
