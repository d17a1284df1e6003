"""End a user's logins and delete their grants and consents, with Redis alone.

The account service (and so the command line) and the management pages share
this code, so it needs no running application: the back-channel logout
tokens it causes are queued in Redis, and every worker's sender delivers them.

A deleted grant makes every token it issued invalid at once: userinfo,
refresh and introspection all read the grant from Redis. Client credentials
tokens have no grant and stay untouched.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field

from ..log import STORE, security_event
from . import keys
from .clients import ClientStore
from .connection import RedisClient
from .login_sessions import LoginSessionGrants
from .logout_jobs import LogoutJob, LogoutJobs
from .sessions import (
    client_node_key,
    client_subordinates_key,
    grant_key,
    read_nodes,
    user_node_key,
    user_subordinates_key,
)
from .user_logins import UserLogins

logger = logging.getLogger(STORE)

DIVIDER = ";;"  # between uid, client id and grant id in idpyoidc's node names
# Rounds of read-and-delete before giving up on a client whose grants keep
# coming; each round removes every grant it read.
MAX_DELETE_ROUNDS = 5

# KEYS: the client's grant set, the client node, the user's client set, then
# the grant hashes. ARGV: the client node's name in the user's set, then the
# grant names read from the grant set. Removes only the grants it was given,
# so a grant created after the read stays listed for the next round. Returns
# how many grants remain listed.
_DELETE_GRANTS = """
for i = 4, #KEYS do
  redis.call('DEL', KEYS[i])
end
for i = 2, #ARGV do
  redis.call('SREM', KEYS[1], ARGV[i])
end
local remaining = redis.call('SCARD', KEYS[1])
if remaining == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
end
return remaining
"""

# KEYS: the user node, the user's client set. Deletes the node once no client
# node is listed under it.
_DELETE_USER_NODE = """
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
end
return 1
"""


@dataclass
class Revoked:
    """The counts and clients of one revocation, for messages and logs."""

    logins: int = 0
    grants: int = 0
    clients: set[str] = field(default_factory=set)
    backchannel_queued: int = 0


class UserRevocation:
    """Ends logins and deletes grants and consents of one user."""

    def __init__(self, client: RedisClient, logins: UserLogins | None = None) -> None:
        self._redis = client
        # Only the TTL-free parts of the index are used here.
        self._logins = logins or UserLogins(client, max_age=1, idle_timeout=1)
        # revoke_all ignores the TTL, which only add() applies.
        self._login_grants = LoginSessionGrants(client, ttl=1)
        self._jobs = LogoutJobs(client)
        self._clients = ClientStore(client)
        self._delete_grants = client.register_script(_DELETE_GRANTS)
        self._delete_user_node = client.register_script(_DELETE_USER_NODE)

    async def end_login(self, sub: str, sid: str) -> Revoked | None:
        """End one login: revoke its grants and queue back-channel logouts.

        Returns None when the user has no such login, which also covers
        another user's sid, because the index is per user.
        """
        if not await self._logins.remove(sub, sid):
            return None
        grants = await self._login_grants.revoke_all(sub, sid)
        targets = {(grant.client_id, sid) for grant in grants}
        revoked = Revoked(logins=1, grants=len(grants))
        revoked.clients = {client_id for client_id, _ in targets}
        revoked.backchannel_queued = await self._queue_logouts(sub, targets)
        security_event(
            "login_session_revoked",
            sub=sub,
            grants_revoked=revoked.grants,
            backchannel_queued=revoked.backchannel_queued,
        )
        return revoked

    async def revoke_client(self, sub: str, client_id: str) -> Revoked:
        """Delete every grant of the user at the client and the user's consent."""
        sids = await self._sids_with_client(sub, client_id)
        deleted = await self._delete_client_grants(sub, client_id)
        await self._redis.delete(keys.consent(sub, client_id))

        targets = {(client_id, sid) for sid in sids}
        if deleted and not targets:
            targets = {(client_id, "")}
        revoked = Revoked(grants=deleted, clients={client_id} if deleted else set())
        revoked.backchannel_queued = await self._queue_logouts(sub, targets)
        security_event(
            "client_access_revoked",
            sub=sub,
            client_id=client_id,
            grants_revoked=deleted,
            backchannel_queued=revoked.backchannel_queued,
        )
        return revoked

    async def revoke_everything(self, sub: str) -> Revoked:
        """End every login, delete every grant and consent of the user."""
        # NOTE: an authorization that checked its login before the index entry
        # went and commits its grant after the walk below keeps that grant.
        # Callers disable or remove the user first, so no new login follows.
        sids = await self._logins.remove_all(sub)
        targets: set[tuple[str, str]] = set()
        revoked = Revoked(logins=len(sids))
        for sid in sids:
            grants = await self._login_grants.revoke_all(sub, sid)
            revoked.grants += len(grants)
            targets |= {(grant.client_id, sid) for grant in grants}

        for client_id in await self._client_ids(sub):
            deleted = await self._delete_client_grants(sub, client_id)
            revoked.grants += deleted
            if deleted and all(client_id != target for target, _ in targets):
                # Grants that outlived their login, such as refresh tokens.
                targets.add((client_id, ""))
        await self._delete_user_node(
            keys=[user_node_key(sub), user_subordinates_key(sub)]
        )
        await self._delete_consents(sub)

        revoked.clients = {client_id for client_id, _ in targets}
        revoked.backchannel_queued = await self._queue_logouts(sub, targets)
        security_event(
            "user_revoked",
            sub=sub,
            logins_ended=revoked.logins,
            grants_revoked=revoked.grants,
            clients=",".join(sorted(revoked.clients)) or "-",
            backchannel_queued=revoked.backchannel_queued,
        )
        return revoked

    async def client_ids(self, sub: str) -> list[str]:
        """Return the ids of the clients with a session node of the user."""
        return await self._client_ids(sub)

    async def grant_documents(self, sub: str, client_id: str) -> list[bytes]:
        """Return the stored JSON of the user's grants at the client."""
        members = await self._redis.smembers(client_subordinates_key(sub, client_id))
        grant_ids = [_text(member).rpartition(DIVIDER)[2] for member in members]
        if not grant_ids:
            return []
        grant_keys = [grant_key(sub, client_id, grant_id) for grant_id in grant_ids]
        stored = await read_nodes(self._redis, grant_keys)
        return [node.data for node in stored if node.data is not None]

    async def consents(self, sub: str) -> dict[str, set[str]]:
        """Return the scopes the user consented to, per registered client."""
        client_ids = sorted(
            _text(member) for member in await self._redis.smembers(keys.clients_index())
        )
        if not client_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for client_id in client_ids:
                pipe.smembers(keys.consent(sub, client_id))
            results = await pipe.execute()
        return {
            client_id: {_text(scope) for scope in scopes}
            for client_id, scopes in zip(client_ids, results, strict=True)
            if scopes
        }

    async def _client_ids(self, sub: str) -> list[str]:
        members = await self._redis.smembers(user_subordinates_key(sub))
        prefix = sub + DIVIDER
        names = (_text(member) for member in members)
        return sorted(name[len(prefix) :] for name in names if name.startswith(prefix))

    async def _delete_client_grants(self, sub: str, client_id: str) -> int:
        """Delete the client's grants of the user; return how many were listed."""
        set_key = client_subordinates_key(sub, client_id)
        client_name = sub + DIVIDER + client_id
        deleted = 0
        for _ in range(MAX_DELETE_ROUNDS):
            members = sorted(_text(m) for m in await self._redis.smembers(set_key))
            grant_keys = [
                grant_key(sub, client_id, member.rpartition(DIVIDER)[2])
                for member in members
            ]
            remaining = await self._delete_grants(
                keys=[
                    set_key,
                    client_node_key(sub, client_id),
                    user_subordinates_key(sub),
                    *grant_keys,
                ],
                args=[client_name, *members],
            )
            deleted += len(members)
            if int(remaining) == 0:
                return deleted
        logger.warning(
            "grants kept appearing while revoking: sub=%s client_id=%s",
            sub,
            client_id,
        )
        return deleted

    async def _sids_with_client(self, sub: str, client_id: str) -> list[str]:
        """Return the indexed logins that issued a grant to the client."""
        sids = [_text(sid) for sid in await self._redis.hkeys(keys.user_logins(sub))]
        if not sids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.smembers(keys.login_session_grants(sub, sid))
            results = await pipe.execute()
        return [
            sid
            for sid, members in zip(sids, results, strict=True)
            if any(_member_client(member) == client_id for member in members)
        ]

    async def _delete_consents(self, sub: str) -> None:
        """Delete the user's consent to every registered client."""
        client_ids = [
            _text(member) for member in await self._redis.smembers(keys.clients_index())
        ]
        consent_keys = [keys.consent(sub, client_id) for client_id in client_ids]
        if consent_keys:
            # One slot (the user's hash tag), so one DEL is valid on a cluster.
            await self._redis.delete(*consent_keys)

    async def _queue_logouts(self, sub: str, targets: set[tuple[str, str]]) -> int:
        """Queue a logout token per (client, sid) whose client has a back-channel URI.

        An empty sid marks grants without a live login. Their token names
        the user alone, so clients that require a sid get none.
        """
        queued = 0
        for client_id, sid in sorted(targets):
            client = await self._clients.get(client_id)
            if client is None or client.backchannel_logout_uri is None:
                continue
            if not sid and client.backchannel_logout_session_required:
                continue
            await self._jobs.add(
                LogoutJob(secrets.token_urlsafe(16), client_id, sub, sid)
            )
            queued += 1
        return queued


def _member_client(member: bytes | str) -> str | None:
    """Return the client id of a login session's grant member (JSON array)."""
    try:
        client_id, _ = json.loads(member)
    except (TypeError, ValueError):
        return None
    return str(client_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
