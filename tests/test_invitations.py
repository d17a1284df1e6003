"""Invitation links: the CLI commands, and registering through /register/<token>."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from porchlight_op import cli
from porchlight_op.store.embedded import EmbeddedRedis

# ---------------------------------------------------------------------------
# Command line, against an embedded Redis


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("PORCHLIGHT_DATA_DIR", str(path))
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    return path


@pytest.fixture
def server(data_dir: Path) -> Iterator[EmbeddedRedis]:
    embedded = EmbeddedRedis(data_dir)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    """Run the CLI and return the exit status, stdout and stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> dict:
    code, out, err = run(capsys, *argv, "--json", stdin=stdin)
    assert code == 0, err
    data = json.loads(out)
    return data


def test_invite_create_prints_link(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "invite", "create")

    assert code == 0, err
    link = out.splitlines()[0]
    assert link.startswith("http://localhost:8080/register/")
    assert len(link.rsplit("/", 1)[1]) == 43


def test_invite_create_json_fields(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(
        capsys,
        "invite",
        "create",
        "--email",
        "bo@example.org",
        "--admin",
        "--expires",
        "12h",
    )

    assert data["link"].startswith("http://localhost:8080/register/")
    assert data["email"] == "bo@example.org"
    assert data["admin"] is True
    assert data["state"] == "pending"
    assert len(data["id"]) == 12


def test_invite_create_rejects_bad_duration(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "invite", "create", "--expires", "7 weeks")

    assert code == 2
    assert "invalid duration" in err


def test_invite_list_never_shows_token(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_json(capsys, "invite", "create", "--email", "cy@example.org")
    token = created["link"].rsplit("/", 1)[1]

    code, out, err = run(capsys, "invite", "list")
    rows = run_json(capsys, "invite", "list")

    assert code == 0, err
    assert created["id"] in out
    assert "cy@example.org" in out
    assert token not in out
    assert [row["id"] for row in rows] == [created["id"]]
    assert token not in json.dumps(rows)


def test_invite_revoke_by_id(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_json(capsys, "invite", "create")

    revoked = run_json(capsys, "invite", "revoke", created["id"])
    rows = run_json(capsys, "invite", "list")
    again, _, err = run(capsys, "invite", "revoke", created["id"])

    assert revoked == {"revoked": created["id"]}
    assert [row["state"] for row in rows] == ["revoked"]
    assert again == 1
    assert "revoked already" in err


def test_invite_revoke_unknown_id(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "invite", "revoke", "0123456789ab")

    assert code == 1
    assert "not found" in err


def test_init_admin_with_password_creates_admin(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_json(
        capsys, "init-admin", "root", "--password-stdin", stdin="long enough pw\n"
    )
    shown = run_json(capsys, "user", "show", "root")

    assert created["groups"] == ["admin"]
    assert shown["groups"] == ["admin"]
    assert shown["password"] == "set"


def test_init_admin_without_password_prints_bound_link(
    server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(capsys, "init-admin", "root")
    users = run(capsys, "user", "list")[1]

    assert data["link"].startswith("http://localhost:8080/register/")
    assert data["username"] == "root"
    assert data["admin"] is True
    assert users.strip() == "no users"
