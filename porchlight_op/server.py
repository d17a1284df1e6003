"""Run the OP: one process, or a supervisor with N worker processes on one port.

Workers bind the same port with SO_REUSEPORT, so the kernel spreads
connections across them; each has its own event loop and Redis pool. The
supervisor starts the embedded Redis once, restarts workers that die, and on
SIGTERM or SIGINT sends every worker SIGTERM, so each finishes its requests and exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import time
from collections.abc import Coroutine
from types import FrameType
from typing import Any

from aiohttp import web

from .app import configure_logging, create_app
from .log import APP
from .settings import Settings
from .store.connection import make_redis
from .store.embedded import EmbeddedRedis

logger = logging.getLogger(APP)

# A worker that dies this many times within RESTART_WINDOW seconds is not
# restarted again; the supervisor stops everything instead of crash-looping.
MAX_RESTARTS = 5
RESTART_WINDOW = 30.0
# Extra seconds, beyond shutdown_timeout, before a worker is killed.
KILL_GRACE = 5.0
# Exit status of a worker that cannot start at all (its port is taken, say);
# restarting it would fail the same way.
FATAL_EXIT = 3


class ListenError(RuntimeError):
    """The server could not bind its address (in use, or not permitted)."""


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; return once everything has stopped."""
    configure_logging(settings)
    for warning in settings.warnings():
        logger.warning("%s", warning)

    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        embedded.start()
        logger.warning(
            "embedded Redis at %s is for development only; set redis_url for "
            "production",
            embedded.socket_path,
        )
        settings = dataclasses.replace(settings, redis_url=embedded.url)
    try:
        if settings.workers == 1:
            _run_event_loop(serve(settings, reuse_port=False))
        else:
            Supervisor(settings).run()
    finally:
        if embedded is not None:
            embedded.stop()
    logger.info("stopped")


def _run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when installed; a trivial aiohttp handler gained about 10 %."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def serve(settings: Settings, reuse_port: bool) -> None:
    """Run one worker until it receives SIGTERM or SIGINT."""
    assert settings.redis_url is not None
    client = make_redis(settings.redis_url, settings)
    runner = web.AppRunner(
        create_app(settings, client),
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    try:
        await runner.setup()
        _freeze_startup_objects()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None
        logger.info(
            "worker %d serving %s on http://%s:%d",
            os.getpid(),
            settings.issuer,
            settings.host,
            settings.port,
        )
        await _wait_for_stop_signal()
    finally:
        # Stops accepting, then lets in-flight requests finish (bounded).
        await runner.cleanup()
        await client.aclose()


def _freeze_startup_objects() -> None:
    """Move the objects built at start-up out of the generations the GC scans."""
    # The application, the idpyoidc server and the templates live until the
    # worker exits, and each full collection traversed them all. Under the load
    # of benchmarks/run.py (Python 3.11, two shared cores) a full collection
    # paused the worker for 40 to 100 ms before the freeze and about 1 ms after.
    # Raising the generation-0 threshold to 2000 or 7000 saved under 1 % of
    # CPU, within the noise, so the thresholds stay at their defaults.
    gc.collect()
    gc.freeze()


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # Further signals (a second Ctrl-C, the supervisor's forwarded SIGTERM)
    # must not interrupt the graceful shutdown that follows.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)


class Supervisor:
    """Forks the workers, restarts dead ones, and stops them all on a signal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers: dict[int, int] = {}  # pid -> worker number
        self.stopping = False
        self.failed = False
        self.restarts: list[float] = []

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for number in range(self.settings.workers):
            self._spawn(number)
        while self.workers:
            self._reap_one()
        logger.info("all workers stopped")
        if self.failed:
            raise ListenError(
                f"cannot listen on {self.settings.host}:{self.settings.port}"
            )

    def _spawn(self, number: int) -> None:
        pid = os.fork()
        if pid == 0:
            self._become_worker()
        self.workers[pid] = number

    def _become_worker(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        status = 0
        try:
            _run_event_loop(serve(self.settings, reuse_port=True))
        except ListenError as exc:
            logger.error("%s", exc)
            status = FATAL_EXIT
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)

    def _reap_one(self) -> None:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            self.workers.clear()
            return
        number = self.workers.pop(pid, None)
        if number is None or self.stopping:
            return
        if os.waitstatus_to_exitcode(status) == FATAL_EXIT:
            self.failed = True
            self._stop_workers()
            return
        logger.warning(
            "worker %d exited with status %d; restarting it",
            pid,
            os.waitstatus_to_exitcode(status),
        )
        if self._too_many_restarts():
            logger.error("workers keep dying; stopping the server")
            self._stop_workers()
            return
        self._spawn(number)

    def _too_many_restarts(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW]
        self.restarts.append(now)
        return len(self.restarts) > MAX_RESTARTS

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            logger.info("stopping %d worker(s)", len(self.workers))
            self._stop_workers()

    def _stop_workers(self) -> None:
        self.stopping = True
        for pid in list(self.workers):
            _signal(pid, signal.SIGTERM)
        signal.signal(signal.SIGALRM, self._kill_stragglers)
        signal.alarm(int(self.settings.shutdown_timeout + KILL_GRACE))

    def _kill_stragglers(self, signum: int, frame: FrameType | None) -> None:
        for pid in list(self.workers):
            logger.warning("worker %d did not stop in time; killing it", pid)
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
