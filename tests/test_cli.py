"""The porchlight-op command line, run in-process against an embedded Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flows import run_cli, run_cli_json

from porchlight_op import cli
from porchlight_op.store.embedded import EmbeddedRedis


def client_ids(rows: object) -> list[str]:
    assert isinstance(rows, list)
    return [row["client_id"] for row in rows]


def usernames(rows: object) -> list[str]:
    assert isinstance(rows, list)
    return [row["username"] for row in rows]


# ---------------------------------------------------------------------------
# General behaviour


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("porchlight-op ")


def test_missing_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])

    assert exited.value.code == 2


def test_settings_error_exits_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORCHLIGHT_PORT", "0")

    code, out, err = run_cli(capsys, "client", "list")

    assert code == 2
    assert err == "porchlight-op: port: must be between 1 and 65535, got 0\n"
    assert out == ""


def test_bad_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("colour = 1\n", encoding="utf-8")

    code, _, err = run_cli(capsys, "user", "list", "--config", str(config))

    assert code == 2
    assert err.startswith("porchlight-op: colour: unknown setting")


def test_unreachable_redis_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", f"unix://{tmp_path}/absent.sock")
    monkeypatch.setenv("PORCHLIGHT_REDIS_CONNECT_TIMEOUT", "0.2")

    code, _, err = run_cli(capsys, "client", "list")

    assert code == 1
    assert err.startswith("porchlight-op: cannot reach Redis at unix://")
    assert err.count("\n") == 1


def test_command_starts_and_stops_embedded_redis(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "client", "list")

    assert code == 0
    assert out == "no clients\n"
    assert not EmbeddedRedis(data_dir).is_running()


def test_command_warns_when_it_creates_a_new_database(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_cli(capsys, "client", "list")
    first = caplog.text
    caplog.clear()
    run_cli(capsys, "client", "list")

    assert "created a new, empty embedded Redis database" in first
    assert str(data_dir) in first
    assert "created a new" not in caplog.text


# ---------------------------------------------------------------------------
# client commands


def test_client_add_generates_secret_once(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "client", "add", "web", "--redirect-uri", "https://rp.example/cb"
    )

    assert code == 0
    secret_lines = [line for line in out.splitlines() if line.startswith("secret: ")]
    assert len(secret_lines) == 1
    assert len(secret_lines[0].removeprefix("secret: ")) >= 43

    code, out, _ = run_cli(capsys, "client", "show", "web")

    assert code == 0
    assert "secret: set" in out
    assert secret_lines[0] not in out


def test_client_add_json_and_show(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    added = run_cli_json(
        capsys,
        "client",
        "add",
        "spa",
        "--redirect-uri",
        "http://localhost:5173/cb",
        "--redirect-uri",
        "http://127.0.0.1:5173/cb",
        "--auth-method",
        "none",
        "--scope",
        "openid email",
        "--name",
        "SPA",
    )
    shown = run_cli_json(capsys, "client", "show", "spa")

    assert isinstance(added, dict)
    assert added["secret"] == "none"
    assert shown == {
        "client_id": "spa",
        "name": "SPA",
        "auth_method": "none",
        "secret": "none",
        "redirect_uris": ["http://localhost:5173/cb", "http://127.0.0.1:5173/cb"],
        "scope": "openid email",
        "grant_types": "authorization_code refresh_token",
        "access_token_format": "jwt",
        "jwks": "none",
        "jwks_uri": None,
        "first_party": False,
        "require_auth_time": False,
        "post_logout_redirect_uris": [],
        "backchannel_logout_uri": None,
        "backchannel_logout_session_required": False,
        "source": "store",
        "created_at": shown["created_at"],  # type: ignore[index]
    }


def test_client_add_given_secret_is_not_printed(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "client",
        "add",
        "web",
        "--redirect-uri",
        "https://rp.example/cb",
        "--secret",
        "given-secret-value",
    )

    assert code == 0
    assert "given-secret-value" not in out


def test_client_add_existing_id_exits_1(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("client", "add", "web", "--redirect-uri", "https://rp.example/cb")
    run_cli(capsys, *argv)

    code, _, err = run_cli(capsys, *argv)

    assert code == 1
    assert err == "porchlight-op: client 'web' already exists\n"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("/cb", "must be an absolute URI"),
        ("https://rp.example/cb#x", "must not contain a fragment"),
    ],
)
def test_client_add_invalid_redirect_uri(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str], uri: str, problem: str
) -> None:
    code, _, err = run_cli(capsys, "client", "add", "web", "--redirect-uri", uri)

    assert code == 2
    assert err.startswith(f"porchlight-op: clients.web.redirect_uris: {problem}")


def test_client_add_public_with_secret_rejected(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys,
        "client",
        "add",
        "spa",
        "--redirect-uri",
        "https://rp.example/cb",
        "--auth-method",
        "none",
        "--secret",
        "s",
    )

    assert code == 2
    assert "must not have a secret" in err


def test_client_list_and_remove(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    for client_id in ("b-client", "a-client"):
        run_cli(
            capsys,
            "client",
            "add",
            client_id,
            "--redirect-uri",
            "https://rp.example/cb",
        )

    listed = run_cli_json(capsys, "client", "list")
    code, out, _ = run_cli(capsys, "client", "remove", "a-client")
    after = run_cli_json(capsys, "client", "list")

    assert client_ids(listed) == ["a-client", "b-client"]
    assert isinstance(listed, list)
    assert [row["secret"] for row in listed] == ["set", "set"]
    assert code == 0
    assert out == "removed client a-client\n"
    assert client_ids(after) == ["b-client"]


@pytest.mark.parametrize("action", ["show", "remove"])
def test_client_unknown_id_exits_1(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    code, _, err = run_cli(capsys, "client", action, "ghost")

    assert code == 1
    assert err == "porchlight-op: client 'ghost' not found\n"


def test_client_list_includes_config_clients(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(__file__).resolve().parent.parent / "conf" / "porchlight.toml"

    rows = run_cli_json(capsys, "client", "list", "--config", str(config))

    assert isinstance(rows, list)
    assert {row["client_id"] for row in rows} == {"example-web", "example-spa"}
    assert {row["source"] for row in rows} == {"config"}
    assert "change-me" not in json.dumps(rows)


# ---------------------------------------------------------------------------
# user commands


def test_user_add_prints_sub(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--email",
        "alice@example.com",
        "--given-name",
        "Alice",
        stdin="correct horse battery\n",
    )
    sub = out.strip()

    shown = run_cli_json(capsys, "user", "show", sub)

    assert code == 0
    assert isinstance(shown, dict)
    assert shown["sub"] == sub
    assert shown["username"] == "alice"
    assert shown["password"] == "set"
    assert shown["claims"] == {"email": "alice@example.com", "given_name": "Alice"}


def test_user_without_password(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "user", "add", "bob")

    shown = run_cli_json(capsys, "user", "show", "bob")

    assert isinstance(shown, dict)
    assert shown["password"] == "none"


def test_user_password_keeps_inner_spaces(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the newline goes; surrounding spaces are part of the password.
    code, _, err = run_cli(
        capsys, "user", "add", "carol", "--password-stdin", stdin="  pass word  \n"
    )

    assert code == 0, err


def test_user_empty_password_rejected(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "user", "add", "dave", "--password-stdin", stdin="\n"
    )

    assert code == 1
    assert err == "porchlight-op: password must not be empty\n"


def test_user_add_existing_exits_1(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "user", "add", "erin")

    code, _, err = run_cli(capsys, "user", "add", "Erin")

    assert code == 1
    assert err == "porchlight-op: user 'Erin' already exists\n"


def test_user_list_and_remove(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "user", "add", "frank")
    run_cli(capsys, "user", "add", "grace")

    listed = run_cli_json(capsys, "user", "list")
    code, out, _ = run_cli(capsys, "user", "remove", "frank")
    after = run_cli_json(capsys, "user", "list")

    assert usernames(listed) == ["frank", "grace"]
    assert code == 0
    assert out.startswith("removed user frank (")
    assert usernames(after) == ["grace"]


def test_user_set_password(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "user", "add", "heidi")

    code, out, err = run_cli(
        capsys,
        "user",
        "set-password",
        "heidi",
        "--password-stdin",
        stdin="new password 1\n",
    )
    shown = run_cli_json(capsys, "user", "show", "heidi")

    assert code == 0, err
    assert out == "password changed for heidi\n"
    assert isinstance(shown, dict)
    assert shown["password"] == "set"


def test_user_set_password_requires_stdin_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["user", "set-password", "heidi"])

    assert exited.value.code == 2


@pytest.mark.parametrize("action", ["show", "remove"])
def test_user_unknown_exits_1(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    code, _, err = run_cli(capsys, "user", action, "nobody")

    assert code == 1
    assert err == "porchlight-op: user 'nobody' not found\n"


# ---------------------------------------------------------------------------
# demo


def test_demo_prints_stable_credentials(
    server: EmbeddedRedis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[object] = []
    monkeypatch.setattr(cli, "_start_server", started.append)

    first = run_cli_json(capsys, "demo", "--port", "8765")
    second = run_cli_json(capsys, "demo", "--port", "8765")

    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert len(started) == 2
    assert first["client_id"] == "demo-rp"
    assert first["client_secret"] == second["client_secret"]
    assert first["password"] == second["password"]
    assert first["discovery_url"] == (
        "http://localhost:8765/.well-known/openid-configuration"
    )
    assert first["authorization_url"].startswith("http://localhost:8765/authorization?")
    assert "code_challenge_method=S256" in first["authorization_url"]


def test_demo_challenge_matches_verifier(
    server: EmbeddedRedis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlsplit

    monkeypatch.setattr(cli, "_start_server", lambda settings: None)

    details = run_cli_json(capsys, "demo")
    assert isinstance(details, dict)
    query = parse_qs(urlsplit(details["authorization_url"]).query)
    digest = hashlib.sha256(details["code_verifier"].encode()).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    assert query["code_challenge"] == [expected]
    assert query["client_id"] == ["demo-rp"]
    assert query["redirect_uri"] == ["http://localhost:9000/callback"]
    assert query["scope"] == ["openid profile email offline_access"]
    assert query["response_type"] == ["code"]


def test_demo_warns_on_stderr(
    server: EmbeddedRedis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "_start_server", lambda settings: None)

    code, _, err = run_cli(capsys, "demo")

    assert code == 0
    assert "demo credentials are for development only" in err
