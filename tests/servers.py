"""Run `porchlight-op serve` or `demo` as a real OS process for tests.

Each process gets its settings from PORCHLIGHT_* variables only, listens on
127.0.0.1 and writes stdout and stderr to files kept for diagnostics. Several
processes may share one issuer, as behind a load balancer, so the helpers at
the end point a relying party at one chosen process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from support import Browser, RelyingParty, query_of

READY_TIMEOUT = 15.0  # seconds until GET /health/ready must return 200
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
KILL_TIMEOUT = 5.0  # seconds to reap the process after SIGKILL
POLL_INTERVAL = 0.05  # seconds between readiness probes
PROBE_TIMEOUT = 1.0  # seconds for one readiness request
LOG_TAIL_LINES = 20

# The smallest argon2 cost, so that hashing a password in a test takes milliseconds.
TEST_ARGON2_ENV = {
    "PORCHLIGHT_ARGON2_TIME_COST": "1",
    "PORCHLIGHT_ARGON2_MEMORY_COST": "1024",
    "PORCHLIGHT_ARGON2_PARALLELISM": "1",
}


def porchlight_executable() -> str:
    """Return the porchlight-op console script of the running virtualenv."""
    beside_python = Path(sys.executable).parent / "porchlight-op"
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which("porchlight-op")
    if found is None:
        raise RuntimeError(
            "porchlight-op not found; run pip install -e . in the repository"
        )
    return found


def base_environ(overrides: Mapping[str, str]) -> dict[str, str]:
    """Copy os.environ without PORCHLIGHT_* variables, then apply overrides."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PORCHLIGHT_")
    }
    environ.update(TEST_ARGON2_ENV)
    environ.update(overrides)
    return environ


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no file {path})"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """One `porchlight-op serve|demo` process on 127.0.0.1:port."""

    def __init__(
        self,
        *,
        log_dir: Path,
        name: str,
        port: int,
        redis_url: str | None,
        data_dir: Path,
        issuer: str | None = None,
        command: str = "serve",
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.issuer = issuer or self.url
        self.command = command
        self.args = tuple(args)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        variables = {
            "PORCHLIGHT_ISSUER": self.issuer,
            "PORCHLIGHT_HOST": "127.0.0.1",
            "PORCHLIGHT_PORT": str(port),
            "PORCHLIGHT_DATA_DIR": str(data_dir),
        }
        if redis_url is not None:
            variables["PORCHLIGHT_REDIS_URL"] = redis_url
        variables.update(env or {})
        self.environ = base_environ(variables)
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited yet."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServerProcess:
        """Spawn the process without waiting for it to become ready."""
        command = [porchlight_executable(), self.command, *self.args]
        with (
            self.stdout_path.open("ab") as stdout,
            self.stderr_path.open("ab") as stderr,
        ):
            # A new session lets stop() kill any worker processes as one group.
            self.process = subprocess.Popen(
                command,
                env=self.environ,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        self.killed = False
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Poll GET /health/ready until it returns 200; raise if that times out."""
        process = self._require_process()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {process.returncode} before "
                    f"it was ready\n{self.diagnostics()}"
                )
            if self._probe_ready():
                return self
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(
            f"{self.name} was not ready within {timeout:.0f} s\n{self.diagnostics()}"
        )

    def _probe_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                self.url + "/health/ready", timeout=PROBE_TIMEOUT
            ) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM, SIGKILL the process group after timeout; return the status."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=KILL_TIMEOUT)
        return process.returncode

    def stop_cleanly(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop with SIGTERM and assert that the process exited 0 without SIGKILL."""
        status = self.stop(timeout)
        assert not self.killed, (
            f"{self.name} ignored SIGTERM for {timeout:.0f} s and was killed\n"
            f"{self.diagnostics()}"
        )
        assert status == 0, (
            f"{self.name} exited with status {status} after SIGTERM\n"
            f"{self.diagnostics()}"
        )

    def restart(self) -> ServerProcess:
        """Stop cleanly, then start the same command again and wait until ready."""
        self.stop_cleanly()
        return self.start().wait_ready()

    def stdout(self) -> str:
        """Return everything the process printed on stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Return everything the process printed on stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def diagnostics(self) -> str:
        """Return the command and the ends of both output files, for messages."""
        return (
            f"command: {self.command} {' '.join(self.args)}\n"
            f"--- {self.stdout_path}\n{tail(self.stdout_path)}\n"
            f"--- {self.stderr_path}\n{tail(self.stderr_path)}"
        )

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process


# -- driving a relying party against one process --

# Discovery fields whose URLs route_to() rewrites; none of them has a query.
ENDPOINT_FIELDS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
)


def route_to(rp: RelyingParty, server: ServerProcess) -> RelyingParty:
    """Point the RP's discovered endpoints at one process, keeping its issuer."""
    for name in ENDPOINT_FIELDS:
        path = urlsplit(rp.metadata[name]).path
        rp.metadata[name] = server.url + path
    return rp


async def log_in(
    server: ServerProcess, rp: RelyingParty, username: str, password: str
) -> str:
    """Run the browser part of the code flow at one process; return the redirect."""
    route_to(rp, server)
    browser = Browser.open(server.url)
    try:
        reply = await browser.authorize(rp.authorization_url(), username, password)
    finally:
        await browser.close()
    assert reply.status == 302, f"login at {server.name} stopped with {reply.status}"
    location = reply.headers["Location"]
    assert location.startswith(rp.redirect_uri), location
    params = query_of(location)
    assert "code" in params, f"no code in {location}"
    assert params["state"] == rp.state
    assert params["iss"] == server.issuer
    return location


async def post_token(
    server: ServerProcess, form: Mapping[str, str], authorization: str | None = None
) -> httpx.Response:
    """POST a form to one process's token endpoint, bypassing Authlib."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient() as http:
        return await http.post(server.url + "/token", data=form, headers=headers)
