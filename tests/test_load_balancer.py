"""The OP behind nginx: three replicas on one Redis, round robin, no stickiness.

nginx runs as a plain process with a generated configuration in the test's
temporary directory and adds an X-Served-By header naming the replica that
served the request. The demo client and user come from deploy/provision.sh, so these
tests also cover that script.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import aiohttp
import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from servers import ServerProcess, base_environ, porchlight_executable, tail
from support import REDIRECT_URI, Browser, RelyingParty, free_port, hidden_inputs

from porchlight_op.settings import DEFAULT_SCOPE
from porchlight_op.store.consent import ConsentStore

REPO = Path(__file__).resolve().parent.parent
PROVISION_SCRIPT = REPO / "deploy" / "provision.sh"
CLIENT_ID = "rp-behind-nginx"
CLIENT_SECRET = "nginx-test-secret"
USERNAME = "alice"
PASSWORD = "correct horse battery"
EMAIL = "alice@example.org"
SERVED_BY = "X-Served-By"
REPLICAS = 3
MAX_FLOW_ATTEMPTS = 3  # whole flows to try before the routing assertion fails
NGINX_READY_TIMEOUT = 10.0  # seconds
NGINX_STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
POLL_INTERVAL = 0.05  # seconds
CLI_TIMEOUT = 60.0  # seconds for one provisioning run
# A second loopback address for the browser, so nginx's own address (127.0.0.1,
# the trusted proxy) and the client's address differ.
CLIENT_ADDRESS = "127.0.0.2"
# A documentation address (RFC 5737) that the client claims to be. It is only a
# header value and never contacted.
SPOOFED_ADDRESS = "203.0.113.50"


def nginx_executable() -> str | None:
    """Return the nginx binary on PATH or in /usr/sbin, or None."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


requires_nginx = pytest.mark.skipif(
    nginx_executable() is None,
    reason="nginx is not installed (apt-get install nginx); the load balancer "
    "tests run it as a plain process",
)


# -- nginx --


def nginx_conf(directory: Path, port: int, upstream_ports: Sequence[int]) -> str:
    """Return an nginx configuration for a round-robin proxy on 127.0.0.1:port."""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstream_ports)
    temp = directory / "temp"
    # One worker process, because each worker keeps its own round-robin position.
    return f"""
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;

events {{
    worker_connections 64;
}}

http {{
    access_log {directory}/access.log;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    upstream porchlight_op {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://porchlight_op;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            add_header {SERVED_BY} $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """An nginx process in the foreground, its files in one directory."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def diagnostics(self) -> str:
        """Return the ends of the error and access logs, for messages."""
        return (
            f"--- error.log\n{tail(self.directory / 'error.log')}\n"
            f"--- access.log\n{tail(self.directory / 'access.log')}"
        )

    def wait_ready(self) -> None:
        """Poll GET /health/ready through nginx until a replica returns 200."""
        deadline = time.monotonic() + NGINX_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with status {self.process.returncode}\n"
                    f"{self.diagnostics()}"
                )
            if self._probe_ready():
                return
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(
            f"nginx was not ready within {NGINX_READY_TIMEOUT:.0f} s\n"
            f"{self.diagnostics()}"
        )

    def _probe_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        """Send SIGTERM, then SIGKILL if nginx has not exited in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=NGINX_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=NGINX_STOP_TIMEOUT)


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[[int, Sequence[int]], Nginx]]:
    """Return a factory that starts nginx in front of replica ports, stopped after."""
    started: list[Nginx] = []

    def start(port: int, upstream_ports: Sequence[int]) -> Nginx:
        executable = nginx_executable()
        assert executable is not None
        directory = tmp_path / f"nginx-{len(started)}"
        (directory / "temp").mkdir(parents=True)
        conf = directory / "nginx.conf"
        conf.write_text(nginx_conf(directory, port, upstream_ports))
        # -e: the error log before the configuration is read, since the
        # default /var/log/nginx may not be writable.
        command = [
            executable,
            "-p", str(directory),
            "-c", str(conf),
            "-e", str(directory / "error.log"),
        ]  # fmt: skip
        with (directory / "nginx.out").open("wb") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        nginx = Nginx(port, directory, process)
        started.append(nginx)
        nginx.wait_ready()
        return nginx

    yield start

    for nginx in started:
        nginx.stop()


# -- provisioning through the CLI --


def provision(redis_url: str) -> subprocess.CompletedProcess[str]:
    """Run deploy/provision.sh for the test client and user and return the result."""
    environ = base_environ(
        {
            "PORCHLIGHT_REDIS_URL": redis_url,
            "OP_CLI": porchlight_executable(),
            "DEMO_CLIENT_ID": CLIENT_ID,
            "DEMO_CLIENT_SECRET": CLIENT_SECRET,
            "DEMO_REDIRECT_URI": REDIRECT_URI,
            "DEMO_USERNAME": USERNAME,
            "DEMO_PASSWORD": PASSWORD,
            "DEMO_EMAIL": EMAIL,
        }
    )
    return subprocess.run(
        ["bash", str(PROVISION_SCRIPT)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def user_sub(redis_url: str) -> str:
    """Return the sub of the test user, read with `porchlight-op user show`."""
    result = subprocess.run(
        [porchlight_executable(), "user", "show", USERNAME, "--json"],
        env=base_environ({"PORCHLIGHT_REDIS_URL": redis_url}),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    sub: str = json.loads(result.stdout)["sub"]
    return sub


# -- the stack --


@dataclass
class Stack:
    """Three replicas on one Redis behind one nginx, and the test user's sub."""

    nginx: Nginx
    replicas: list[ServerProcess]
    sub: str

    @property
    def url(self) -> str:
        return self.nginx.url

    def replica_at(self, upstream: str) -> ServerProcess:
        """Return the replica that an X-Served-By value names."""
        for replica in self.replicas:
            if upstream == f"127.0.0.1:{replica.port}":
                return replica
        raise AssertionError(
            f"{SERVED_BY}: {upstream!r} names no single replica, so nginx may have "
            f"retried another one\n{self.nginx.diagnostics()}"
        )


@pytest.fixture
async def stack(redis, redis_server, start_server, start_nginx) -> Stack:
    """Provision an empty Redis through the CLI, then start the replicas and nginx."""
    result = provision(redis_server)
    assert result.returncode == 0, result.stderr
    lb_port = free_port()
    issuer = f"http://127.0.0.1:{lb_port}"
    replicas = [
        start_server(
            redis_server,
            issuer=issuer,
            env={"PORCHLIGHT_TRUSTED_PROXIES": "127.0.0.1"},
        )
        for _ in range(REPLICAS)
    ]
    nginx = start_nginx(lb_port, [replica.port for replica in replicas])
    sub = user_sub(redis_server)
    # The user consented before, so each flow has the same steps as without consent.
    await ConsentStore(redis, 3600).grant(sub, CLIENT_ID, DEFAULT_SCOPE)
    return Stack(nginx, replicas, sub)


# -- one code flow, noting the replica of each step --


@dataclass
class TracedParty(RelyingParty):
    """A relying party that notes the X-Served-By value of each token reply."""

    token_upstreams: list[str] = field(default_factory=list)

    def oauth(self) -> AsyncOAuth2Client:
        client = super().oauth()
        client.event_hooks = {"request": [], "response": [self._note]}
        return client

    async def _note(self, response: httpx.Response) -> None:
        self.token_upstreams.append(response.headers.get(SERVED_BY, ""))


async def traced_code_flow(stack: Stack) -> list[tuple[str, str]]:
    """Run one code flow through nginx and return (step, replica name) pairs."""
    rp = TracedParty(stack.url, CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
    await rp.discover()
    browser = Browser.open(stack.url)
    steps: list[tuple[str, str]] = []

    def note(step: str, upstream: str) -> None:
        steps.append((step, stack.replica_at(upstream).name))

    try:
        start = await browser.get(rp.authorization_url())
        assert start.status == 302, await start.text()
        login_path = start.headers["Location"]
        assert login_path.startswith("/login"), login_path
        note("authorization", start.headers[SERVED_BY])

        page = await browser.get(stack.url + login_path)
        assert page.status == 200, await page.text()
        note("login page", page.headers[SERVED_BY])

        form = hidden_inputs(await page.text())
        form.update({"username": USERNAME, "password": PASSWORD})
        login = await browser.post_form(stack.url + "/login", form)
        assert login.status == 302, await login.text()
        location = login.headers["Location"]
        assert location.startswith(REDIRECT_URI), location
        note("login post", login.headers[SERVED_BY])
    finally:
        await browser.close()

    token = await rp.redeem(location)
    note("token", rp.token_upstreams[-1])

    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == stack.sub
    assert info.json()["email"] == EMAIL
    note("userinfo", info.headers[SERVED_BY])

    refreshed = await rp.refresh(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    note("refresh", rp.token_upstreams[-1])

    # After the steps, because fetching the JWKS is one more request to nginx.
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == stack.sub
    assert claims["iss"] == stack.url
    return steps


def routing_problems(steps: list[tuple[str, str]], replicas: set[str]) -> list[str]:
    """List consecutive steps on one replica and replicas that served no step."""
    problems = [
        f"{before} and {after} both went to {first}"
        for (before, first), (after, second) in pairwise(steps)
        if first == second
    ]
    unused = replicas - {replica for _, replica in steps}
    if unused:
        problems.append(f"no step went to {', '.join(sorted(unused))}")
    return problems


# -- tests --


def test_provision_script_is_idempotent(redis, redis_server):
    first = provision(redis_server)
    second = provision(redis_server)

    assert first.returncode == 0, first.stderr
    assert f"added client {CLIENT_ID}" in first.stdout
    assert f"added user {USERNAME}" in first.stdout
    assert PASSWORD not in first.stdout, "a password from the environment was printed"
    assert second.returncode == 0, second.stderr
    assert f"client {CLIENT_ID} already exists" in second.stdout
    assert f"user {USERNAME} already exists" in second.stdout


def test_provision_script_reports_cli_errors(redis_server):
    environ = base_environ(
        {"PORCHLIGHT_REDIS_URL": redis_server, "OP_CLI": porchlight_executable()}
    )
    environ["DEMO_REDIRECT_URI"] = "not-a-uri#fragment"

    result = subprocess.run(
        ["bash", str(PROVISION_SCRIPT)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )

    assert result.returncode == 1
    assert "porchlight-op:" in result.stderr


@pytest.mark.slow
@requires_nginx
async def test_code_flow_uses_every_replica(stack):
    names = {replica.name for replica in stack.replicas}
    attempts: list[list[tuple[str, str]]] = []

    # With one nginx worker and no other clients, round robin sends each request
    # to the next replica, so the first flow should pass. Retries cover anything
    # else that talks to nginx in between.
    for _ in range(MAX_FLOW_ATTEMPTS):
        steps = await traced_code_flow(stack)
        attempts.append(steps)
        if not routing_problems(steps, names):
            break

    problems = routing_problems(attempts[-1], names)
    assert not problems, f"{problems} in every attempt: {attempts}"


@pytest.mark.slow
@requires_nginx
async def test_login_logs_address_nginx_appended(stack):
    with socket.socket() as probe:
        try:
            probe.bind((CLIENT_ADDRESS, 0))
        except OSError as err:
            pytest.skip(f"cannot bind {CLIENT_ADDRESS} as a client address: {err}")
    rp = RelyingParty(stack.url, CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
    await rp.discover()
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(local_addr=(CLIENT_ADDRESS, 0)),
        headers={"X-Forwarded-For": SPOOFED_ADDRESS},
    )
    browser = Browser(session, stack.url)

    try:
        reply = await browser.authorize(rp.authorization_url(), USERNAME, PASSWORD)
    finally:
        await browser.close()

    assert reply.status == 302, await reply.text()
    replica = stack.replica_at(reply.headers[SERVED_BY])
    logins = [line for line in replica.stderr().splitlines() if "event=login " in line]
    assert len(logins) == 1, replica.diagnostics()
    # nginx forwards "203.0.113.50, 127.0.0.2". The OP trusts only nginx
    # (127.0.0.1), so it must take the last address, the one nginx saw. The
    # peer address alone would give 127.0.0.1 and the first entry the spoof.
    assert f" remote={CLIENT_ADDRESS} " in logins[0] + " ", logins[0]
    everything = "".join(server.stderr() for server in stack.replicas)
    assert SPOOFED_ADDRESS not in everything
    access_log = (stack.nginx.directory / "access.log").read_text().splitlines()
    assert any(line.startswith(f"{CLIENT_ADDRESS} ") for line in access_log)
