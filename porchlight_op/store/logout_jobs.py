"""The queue of back-channel logout deliveries, shared by every worker.

A sorted set scored by due time in milliseconds. A worker claims due jobs with
one script that reads and removes them, so each job goes to exactly one
worker. A retry is a new member with a later score.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass

from ..log import STORE
from . import keys
from .connection import RedisClient

logger = logging.getLogger(STORE)

# KEYS: the queue. ARGV: now (ms), max jobs to claim.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
return due
"""


@dataclass(frozen=True)
class LogoutJob:
    """One logout token to send to one client; `attempt` counts from 1."""

    jti: str
    client_id: str
    sub: str
    sid: str
    attempt: int = 1

    def retry(self) -> LogoutJob:
        """Return the same job for its next attempt."""
        return LogoutJob(self.jti, self.client_id, self.sub, self.sid, self.attempt + 1)


class LogoutJobs:
    """Adds jobs to the shared queue and claims the due ones."""

    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._claim = client.register_script(_CLAIM)

    async def add(self, job: LogoutJob, delay: float = 0.0) -> None:
        """Queue a job, due after `delay` seconds."""
        due = int((time.time() + delay) * 1000)
        member = json.dumps(asdict(job), sort_keys=True)
        await self._redis.zadd(keys.backchannel_logout_jobs(), {member: due})

    async def claim(self, limit: int) -> list[LogoutJob]:
        """Take up to `limit` due jobs out of the queue."""
        now = int(time.time() * 1000)
        raw = await self._claim(
            keys=[keys.backchannel_logout_jobs()], args=[now, limit]
        )
        jobs = []
        for member in raw:
            try:
                jobs.append(LogoutJob(**json.loads(member)))
            except (TypeError, ValueError) as exc:
                # The script already removed the member, so this logs once.
                logger.error("dropped a malformed back-channel logout job: %r", exc)
        return jobs
