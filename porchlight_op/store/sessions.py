"""idpyoidc's session state (user, client and grant nodes) in Redis.

Layout, all under the user's hash tag so one Lua script may touch them in
Redis Cluster:

    pl:{<sub>}:s:u                    STRING v|d  user node (without subordinates)
    pl:{<sub>}:s:u:sub                SET         client node names of the user
    pl:{<sub>}:s:c:<cid>              STRING v|d  client node (without subordinates)
    pl:{<sub>}:s:c:<cid>:sub          SET         grant node names of that client
    pl:{<sub>}:s:g:<cid>:<gid>        STRING v|d  grant with its tokens

A node is one string: its version `v` in decimal, "|", then `d`, the node's
canonical JSON in the storage form of store/node_codec.py. The functions here
encode and decode it, so callers see JSON bytes. Nodes written before this
layout are hashes with fields `v` and `d`. They are still read, and the next
write replaces them with a string. A string saves Redis about 160 bytes per
grant over a hash, whose `d` field is too long for the compact encoding.
NOTE: workers of a version before the string layout fail on string nodes, so
an upgrade replaces all workers rather than running both versions at once.

`v` is a version that every write increments; a commit succeeds only when each
key it rewrites still has the version that was read (optimistic concurrency).
Subordinate lists are sets, so two logins of one user commute without a
conflict. A grant key expires with its last live token; parents are kept at
least as long as their newest grant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from redis.exceptions import ResponseError

from . import keys, node_codec
from .connection import RedisClient

# KEYS: the versioned nodes first, then the sets and touched parents.
# ARGV: n_nodes, parent_ttl, then per node (expected version, data, ttl),
# then per further key (op, member). Empty data deletes the node; a ttl of 0
# means "a parent: keep it at least parent_ttl seconds". The ops are '+'
# (add the member), '-' (remove it) and '~' (only keep the key that long).
_COMMIT = """
local n = tonumber(ARGV[1])
local parent_ttl = tonumber(ARGV[2])
local function version(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'string' then
    return string.match(redis.call('GET', key), '^(%d+)|') or '0'
  elseif kind == 'hash' then
    return redis.call('HGET', key, 'v') or '0'
  end
  return '0'
end
for i = 1, n do
  local current = version(KEYS[i])
  if current ~= ARGV[3 * i] then
    return {0, KEYS[i]}
  end
end
local function extend(key)
  if parent_ttl > 0 and redis.call('TTL', key) < parent_ttl then
    redis.call('EXPIRE', key, parent_ttl)
  end
end
for i = 1, n do
  local data = ARGV[3 * i + 1]
  local ttl = tonumber(ARGV[3 * i + 2])
  if data == '' then
    redis.call('DEL', KEYS[i])
  else
    local next_version = tostring(tonumber(ARGV[3 * i]) + 1)
    -- SET replaces a hash of the old layout too. KEEPTTL (Redis 6.0) keeps a
    -- parent's expiry, which extend() below only ever lengthens.
    redis.call('SET', KEYS[i], next_version .. '|' .. data, 'KEEPTTL')
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      extend(KEYS[i])
    end
  end
end
local base = 3 * n + 3
for j = n + 1, #KEYS do
  local op = ARGV[base + 2 * (j - n - 1)]
  local member = ARGV[base + 2 * (j - n - 1) + 1]
  if op == '+' then
    redis.call('SADD', KEYS[j], member)
    extend(KEYS[j])
  elseif op == '-' then
    redis.call('SREM', KEYS[j], member)
  else
    extend(KEYS[j])
  end
end
return {1}
"""

# KEYS: the grant node, then its client's subordinate set. ARGV: the grant's
# member name in that set. A script rather than MULTI, because redis-py 8.2's
# async cluster client blocks the event loop while it runs a transaction.
_DELETE_GRANT = """
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


def _cid(client_id: str) -> str:
    # Client ids are chosen by operators and may contain ':'.
    return quote(client_id, safe="")


def user_node_key(uid: str) -> str:
    return keys.session_prefix(uid) + "u"


def user_subordinates_key(uid: str) -> str:
    return keys.session_prefix(uid) + "u:sub"


def client_node_key(uid: str, client_id: str) -> str:
    return keys.session_prefix(uid) + "c:" + _cid(client_id)


def client_subordinates_key(uid: str, client_id: str) -> str:
    return client_node_key(uid, client_id) + ":sub"


def grant_key(uid: str, client_id: str, grant_id: str) -> str:
    return keys.session_prefix(uid) + "g:" + _cid(client_id) + ":" + grant_id


@dataclass
class StoredNode:
    """One versioned JSON document as read from Redis. Version 0 means absent."""

    version: int = 0
    data: bytes | None = None


@dataclass
class Branch:
    """The nodes of one user, client and (optionally) grant, as read."""

    user: StoredNode
    user_subordinates: set[str]
    client: StoredNode
    client_subordinates: set[str]
    grant: StoredNode | None = None


@dataclass
class Write:
    """A new value for one versioned key; `data` None deletes the key."""

    key: str
    expected_version: int
    data: bytes | None  # canonical JSON
    ttl: int = 0  # 0 for parents, which are extended to the commit's parent_ttl


@dataclass
class Changes:
    """Everything one request changes in one user's session state."""

    writes: list[Write] = field(default_factory=list)
    added: list[tuple[str, str]] = field(default_factory=list)  # (set key, member)
    removed: list[tuple[str, str]] = field(default_factory=list)
    parent_ttl: int = 0
    # Parent keys that are not rewritten but must live parent_ttl seconds.
    touched: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.writes or self.added or self.removed)


class SessionStore:
    """Reads one user's branch in one round trip and commits changes atomically."""

    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._commit = client.register_script(_COMMIT)
        self._delete_grant = client.register_script(_DELETE_GRANT)

    async def fetch_branch(
        self, uid: str, client_id: str, grant_id: str | None = None
    ) -> Branch:
        """Read the user and client nodes, their subordinate sets and the grant."""
        node_keys = [user_node_key(uid), client_node_key(uid, client_id)]
        if grant_id is not None:
            node_keys.append(grant_key(uid, client_id, grant_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in node_keys:
                pipe.get(key)
            pipe.smembers(user_subordinates_key(uid))
            pipe.smembers(client_subordinates_key(uid, client_id))
            results = await pipe.execute(raise_on_error=False)

        nodes = results[: len(node_keys)]
        user_members, client_members = _raise_errors(results[len(node_keys) :])
        stored = await read_nodes(self._redis, node_keys, nodes)
        branch = Branch(
            user=stored[0],
            user_subordinates=_members(user_members),
            client=stored[1],
            client_subordinates=_members(client_members),
        )
        if grant_id is not None:
            branch.grant = stored[2]
        return branch

    async def fetch_grant(self, uid: str, client_id: str, grant_id: str) -> StoredNode:
        """Read one grant alone, for requests that change nothing."""
        (stored,) = await read_nodes(self._redis, [grant_key(uid, client_id, grant_id)])
        return stored

    async def fetch_grant_with(
        self, uid: str, client_id: str, grant_id: str, others: Sequence[str]
    ) -> tuple[StoredNode, list[bytes | None]]:
        """Read one grant and the string keys `others` in one round trip."""
        key = grant_key(uid, client_id, grant_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            for other in others:
                pipe.get(other)
            results = await pipe.execute(raise_on_error=False)
        (stored,) = await read_nodes(self._redis, [key], results[:1])
        return stored, [
            None if value is None else _bytes(value)
            for value in _raise_errors(results[1:])
        ]

    async def commit_grant(
        self,
        uid: str,
        client_id: str,
        grant_id: str,
        expected_version: int,
        data: bytes | None,
        ttl: int,
    ) -> bool:
        """Write one grant, or delete it when data is None.

        Returns False when the grant's version moved. The user and client
        nodes are not rewritten, only kept alive as long as the grant.
        """
        key = grant_key(uid, client_id, grant_id)
        changes = Changes(writes=[Write(key, expected_version, data, ttl)])
        if data is None:
            member = grant_member(uid, client_id, grant_id)
            changes.removed.append((client_subordinates_key(uid, client_id), member))
        else:
            changes.parent_ttl = ttl
            changes.touched = parent_keys(uid, client_id)
        return await self.commit(changes) is None

    async def commit(self, changes: Changes) -> str | None:
        """Apply the changes; return None, or the key whose version moved."""
        node_keys = [write.key for write in changes.writes]
        set_keys = (
            [key for key, _ in changes.added]
            + [key for key, _ in changes.removed]
            + changes.touched
        )
        args: list[str | bytes | int] = [len(node_keys), changes.parent_ttl]
        for write in changes.writes:
            data = b"" if write.data is None else node_codec.encode(write.data)
            args += [write.expected_version, data, write.ttl]
        for _, member in changes.added:
            args += ["+", member]
        for _, member in changes.removed:
            args += ["-", member]
        for _ in changes.touched:
            args += ["~", ""]

        result = await self._commit(keys=node_keys + set_keys, args=args)
        if int(result[0]) == 1:
            return None
        conflict: bytes = result[1]
        return conflict.decode()

    async def delete_grant(self, uid: str, client_id: str, grant_id: str) -> None:
        """Remove a grant and its link from the client node."""
        member = grant_member(uid, client_id, grant_id)
        grant_keys = [
            grant_key(uid, client_id, grant_id),
            client_subordinates_key(uid, client_id),
        ]
        await self._delete_grant(keys=grant_keys, args=[member])


def parent_keys(uid: str, client_id: str) -> list[str]:
    """Return the keys of a grant's parents: user and client nodes and their sets."""
    return [
        user_node_key(uid),
        user_subordinates_key(uid),
        client_node_key(uid, client_id),
        client_subordinates_key(uid, client_id),
    ]


def grant_member(uid: str, client_id: str, grant_id: str) -> str:
    """Return the name idpyoidc gives a grant node: `uid;;cid;;gid`."""
    return f"{uid};;{client_id};;{grant_id}"


async def read_nodes(
    client: RedisClient,
    node_keys: Sequence[str],
    values: Sequence[object] | None = None,
) -> list[StoredNode]:
    """Parse nodes read with GET, reading them with GET first if `values` is None.

    A GET of a node in the old hash layout fails with WRONGTYPE, so those
    nodes are read again with HMGET, in one more round trip.
    """
    if values is None:
        values = await _read_all(client, "get", node_keys)
    nodes: dict[str, StoredNode] = {}
    old = []
    for key, value in zip(node_keys, values, strict=True):
        if _wrong_type(value):
            old.append(key)
        else:
            nodes[key] = _string_node(value)
    if not old:
        return [nodes[key] for key in node_keys]

    moved = []
    for key, pair in zip(old, await _read_all(client, "hmget", old), strict=True):
        if _wrong_type(pair):
            moved.append(key)
        else:
            nodes[key] = _hash_node(pair)
    # A commit may have replaced the hash with a string in between. Commits
    # never write a hash, so a second GET settles it.
    if moved:
        for key, value in zip(
            moved, await _read_all(client, "get", moved), strict=True
        ):
            nodes[key] = _string_node(value)
    return [nodes[key] for key in node_keys]


async def _read_all(
    client: RedisClient, command: Literal["get", "hmget"], node_keys: Sequence[str]
) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for key in node_keys:
            if command == "get":
                pipe.get(key)
            else:
                pipe.hmget(key, "v", "d")
        results: list[Any] = await pipe.execute(raise_on_error=False)
    return results


def _wrong_type(value: object) -> bool:
    return isinstance(value, ResponseError) and str(value).startswith("WRONGTYPE")


def _raise_errors(results: Sequence[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return list(results)


def _string_node(value: object) -> StoredNode:
    if isinstance(value, Exception):
        raise value
    if value is None:
        return StoredNode()
    if not isinstance(value, bytes | str):
        raise TypeError(f"session node value has type {type(value).__name__}")
    version, separator, data = _bytes(value).partition(b"|")
    if not separator:
        raise node_codec.UnknownNodeFormat("stored session node has no version")
    return StoredNode(version=int(version), data=node_codec.decode(data))


def _hash_node(pair: Sequence[bytes | str | None] | Exception) -> StoredNode:
    if isinstance(pair, Exception):
        raise pair
    version, data = pair
    if version is None or data is None:
        return StoredNode()
    return StoredNode(version=int(version), data=node_codec.decode(_bytes(data)))


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _members(raw: set[bytes]) -> set[str]:
    return {member.decode() for member in raw}
