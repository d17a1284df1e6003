"""The grants issued under each browser login session, for logout to revoke.

Per login session (the `sid` kept in the browser's aiohttp session) a SET
under the user's hash tag lists the grants issued under it, each member the
JSON array [client_id, grant_id]. Revoking deletes each grant hash and its
name in the client's subordinate set, the same change as
SessionStore.delete_grant: a missing grant makes every token of it invalid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import keys
from .connection import RedisClient
from .sessions import client_subordinates_key, grant_key, grant_member

# The script removes only the members it was given, so a grant recorded after
# the caller read the set survives for the next round.
# KEYS: the login session set, then per grant (grant hash, client subordinate
# set). ARGV: per grant (set member, grant node name).
_REVOKE = """
for i = 1, #ARGV / 2 do
  redis.call('DEL', KEYS[2 * i])
  redis.call('SREM', KEYS[2 * i + 1], ARGV[2 * i])
  redis.call('SREM', KEYS[1], ARGV[2 * i - 1])
end
return redis.call('SCARD', KEYS[1])
"""

# Record a grant, then tell whether its login is still in the user's login
# index. KEYS: the login session set, the user's login index (same hash tag).
# ARGV: the member, the set's TTL in seconds, the sid. Returns 1 or 0.
_ADD_IF_INDEXED = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HEXISTS', KEYS[2], ARGV[3])
"""

# Rounds of read-and-revoke before giving up on a set that keeps growing.
MAX_REVOKE_ROUNDS = 5


@dataclass(frozen=True)
class SessionGrant:
    """One grant issued under a login session."""

    client_id: str
    grant_id: str


class LoginSessionGrants:
    """Records grants per login session and revokes them together."""

    def __init__(self, client: RedisClient, ttl: int) -> None:
        self._redis = client
        self._ttl = ttl
        self._revoke = client.register_script(_REVOKE)
        self._add_if_indexed = client.register_script(_ADD_IF_INDEXED)

    async def add(self, sub: str, sid: str, grant: SessionGrant) -> bool:
        """Record a grant under the login session; the set expires with it.

        Returns False when the login has left the user's login index, because
        it ended while the grant was being issued. Ending a login removes the
        index entry first and revokes the set after, so a grant recorded while
        the entry still exists is revoked with the others.
        """
        member = json.dumps([grant.client_id, grant.grant_id])
        indexed = await self._add_if_indexed(
            keys=[keys.login_session_grants(sub, sid), keys.user_logins(sub)],
            args=[member, self._ttl, sid],
        )
        return int(indexed) == 1

    async def revoke_all(self, sub: str, sid: str) -> list[SessionGrant]:
        """Delete every grant of the login session; return the ones found."""
        key = keys.login_session_grants(sub, sid)
        revoked: list[SessionGrant] = []
        for _ in range(MAX_REVOKE_ROUNDS):
            members = sorted(
                _text(member) for member in await self._redis.smembers(key)
            )
            if not members:
                break
            grants = [_parse(member) for member in members]
            script_keys = [key]
            args: list[str] = []
            for member, grant in zip(members, grants, strict=True):
                script_keys += [
                    grant_key(sub, grant.client_id, grant.grant_id),
                    client_subordinates_key(sub, grant.client_id),
                ]
                args += [member, grant_member(sub, grant.client_id, grant.grant_id)]
            remaining = await self._revoke(keys=script_keys, args=args)
            revoked += grants
            if int(remaining) == 0:
                break
        return revoked


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member


def _parse(member: str) -> SessionGrant:
    client_id, grant_id = json.loads(member)
    return SessionGrant(str(client_id), str(grant_id))
