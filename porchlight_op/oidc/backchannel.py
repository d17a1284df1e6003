"""Deliver back-channel logout tokens from the queue in Redis (Back-Channel Logout 1.0).

Every worker runs one sender. It claims due jobs, POSTs each logout token in
its own task with a per-request timeout, and queues a failed job again with
a backoff until MAX_ATTEMPTS, so a slow or dead client delays nobody's logout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
from redis.exceptions import RedisClusterException, RedisError

from ..log import OIDC, security_event
from ..models import Client
from ..store.clients import ClientStore
from ..store.logout_jobs import LogoutJob, LogoutJobs

logger = logging.getLogger(OIDC)

MAX_ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second attempt; doubled for each later one
POLL_INTERVAL = 0.5  # seconds between claims while the queue has no due job
MAX_IN_FLIGHT = 20  # deliveries one worker runs at a time

TokenSigner = Callable[[Client, LogoutJob], str]


class BackchannelSender:
    """Claims logout jobs shared by all workers and POSTs their tokens."""

    def __init__(
        self,
        jobs: LogoutJobs,
        clients: ClientStore,
        sign: TokenSigner,
        http: aiohttp.ClientSession,
    ) -> None:
        self._jobs = jobs
        self._clients = clients
        self._sign = sign
        self._http = http
        self._in_flight: set[asyncio.Task[None]] = set()
        self._redis_failing = False
        self._stopping = False

    def stop(self) -> None:
        """Make run() return after its current step."""
        self._stopping = True

    async def run(self) -> None:
        """Claim and deliver jobs until stopped or cancelled."""
        while not self._stopping:
            free = MAX_IN_FLIGHT - len(self._in_flight)
            claimed = await self._claim(free) if free > 0 else []
            for job in claimed:
                task = asyncio.create_task(self._deliver_logged(job))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(claimed) < free or free == 0:
                await asyncio.sleep(POLL_INTERVAL)

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for deliveries under way, then cancel them."""
        pending = set(self._in_flight)
        if not pending:
            return
        _, unfinished = await asyncio.wait(pending, timeout=timeout)
        for task in unfinished:
            task.cancel()
        if unfinished:
            logger.warning(
                "cancelled %d back-channel logout delivery(ies) at shutdown",
                len(unfinished),
            )

    async def _claim(self, limit: int) -> list[LogoutJob]:
        try:
            claimed = await self._jobs.claim(limit)
        except (RedisError, RedisClusterException) as exc:
            if not self._redis_failing:
                logger.warning("cannot claim back-channel logout jobs: %r", exc)
            self._redis_failing = True
            return []
        if self._redis_failing:
            logger.info("claiming back-channel logout jobs again")
        self._redis_failing = False
        return claimed

    async def _deliver_logged(self, job: LogoutJob) -> None:
        try:
            await self.deliver(job)
        except Exception:
            logger.exception(
                "back-channel logout delivery failed for client_id=%s", job.client_id
            )

    async def deliver(self, job: LogoutJob) -> None:
        """Make one attempt; queue the next one or drop the job on failure."""
        client = await self._clients.get(job.client_id)
        if client is None or client.backchannel_logout_uri is None:
            security_event(
                "backchannel_logout_dropped",
                client_id=job.client_id,
                sub=job.sub,
                reason="client_has_no_backchannel_logout_uri",
            )
            return

        failure = await self._post(
            client.backchannel_logout_uri, self._sign(client, job)
        )
        if failure is None:
            security_event(
                "backchannel_logout_delivered",
                client_id=job.client_id,
                sub=job.sub,
                attempt=job.attempt,
            )
            return
        if job.attempt >= MAX_ATTEMPTS:
            security_event(
                "backchannel_logout_dropped",
                client_id=job.client_id,
                sub=job.sub,
                attempt=job.attempt,
                reason=failure,
            )
            return
        delay = BACKOFF * 2 ** (job.attempt - 1)
        security_event(
            "backchannel_logout_failed",
            client_id=job.client_id,
            sub=job.sub,
            attempt=job.attempt,
            reason=failure,
            retry_in=delay,
        )
        try:
            await self._jobs.add(job.retry(), delay)
        except (RedisError, RedisClusterException) as exc:
            logger.warning(
                "cannot queue back-channel logout retry for client_id=%s: %r",
                job.client_id,
                exc,
            )

    async def _post(self, uri: str, token: str) -> str | None:
        """POST the token; return None on success, else the failure in a few words."""
        try:
            async with self._http.post(
                uri, data={"logout_token": token}, allow_redirects=False
            ) as response:
                # Section 2.8: 200 means success; 204 is also accepted here.
                if response.status in (200, 204):
                    return None
                return f"http_{response.status}"
        except TimeoutError:
            return "timed_out"
        except aiohttp.ClientError as exc:
            return type(exc).__name__
