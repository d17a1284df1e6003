"""Run idpyoidc calls against one user's session state loaded from Redis.

idpyoidc keeps its session tree in a plain mapping (`session_manager.db.db`)
with keys `uid`, `uid;;cid` and `uid;;cid;;gid`. For one synchronous call we
swap in a `SessionView` holding just the nodes of the request's user, then
compare dumps to find what changed and commit that with a versioned
compare-and-set. On a conflict the whole request runs again on fresh state.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from idpyoidc.server import Server
from idpyoidc.server.session.grant import Grant
from idpyoidc.server.session.info import ClientSessionInfo, UserSessionInfo

from .. import fastjson
from ..errors import StorageUnavailable
from ..log import OIDC
from ..store.sessions import (
    Branch,
    Changes,
    SessionStore,
    StoredNode,
    Write,
    client_node_key,
    client_subordinates_key,
    grant_key,
    parent_keys,
    user_node_key,
    user_subordinates_key,
)
from .context import prefetched_claims

logger = logging.getLogger(OIDC)

T = TypeVar("T")

DIVIDER = ";;"
MAX_ATTEMPTS = 4
# Seconds a grant key outlives its last token, to absorb clock skew between
# workers. Correctness does not depend on it: a commit against a key that
# expired meanwhile fails its version check and the request runs again.
EXPIRY_MARGIN = 2


# Token values are stored as digests, so a copy of Redis contains no usable
# token. The prefix marks a digest, as opposed to a value idpyoidc just minted.
DIGEST_PREFIX = "sha256:"


def token_digest(value: str) -> str:
    """Return the at-rest form of a token value: its SHA-256 digest."""
    digest = hashlib.sha256(value.encode()).digest()
    return DIGEST_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _at_rest(value: str) -> str:
    return value if value.startswith(DIGEST_PREFIX) else token_digest(value)


class NodeNotLoaded(KeyError):
    """idpyoidc asked for a node the request did not load.

    A KeyError, because idpyoidc uses KeyError for control flow; the view also
    records the miss, since idpyoidc swallows many of these.
    """


class SessionView(dict[str, Any]):
    """The part of idpyoidc's session database that one request may see."""

    def __init__(self, objects: dict[str, Any], absent: set[str]) -> None:
        super().__init__(objects)
        self.absent = absent
        self.misses: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key not in self.absent:
            self.misses.add(key)
        raise NodeNotLoaded(key)

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key not in self.absent:
            self.misses.add(key)
        return default


@dataclass
class Loaded:
    """One user's branch as objects, with the dumps to diff against later."""

    uid: str
    client_id: str
    objects: dict[str, Any]
    dumps: dict[str, bytes]
    versions: dict[str, int]
    subordinates: dict[str, set[str]]
    absent: set[str] = field(default_factory=set)


def _dump(node: Any) -> bytes:
    document = _without_subordinates(node.dump())
    for entry in document.get("issued_token", ()):
        for token in entry.values():
            for name in ("value", "based_on"):
                if token.get(name):
                    token[name] = _at_rest(token[name])
    return fastjson.dumps_canonical(document)


def _without_subordinates(dump: dict[str, Any]) -> dict[str, Any]:
    dump.pop("subordinate", None)
    return dump


def load_branch(
    branch: Branch,
    uid: str,
    client_id: str,
    grant_id: str | None,
    presented: str | None = None,
) -> Loaded:
    """Turn the documents read from Redis into idpyoidc node objects.

    `presented` is the token the request carries; where the grant stores its
    digest, the value itself is put back so that idpyoidc can find it.
    """
    loaded = Loaded(
        uid=uid, client_id=client_id, objects={}, dumps={}, versions={}, subordinates={}
    )
    client_name = uid + DIVIDER + client_id
    _load_node(loaded, uid, branch.user, UserSessionInfo, branch.user_subordinates)
    _load_node(
        loaded,
        client_name,
        branch.client,
        ClientSessionInfo,
        branch.client_subordinates,
    )
    if grant_id is not None and branch.grant is not None:
        grant_name = client_name + DIVIDER + grant_id
        _load_node(loaded, grant_name, branch.grant, Grant, None)
        grant = loaded.objects.get(grant_name)
        if grant is not None and presented is not None:
            _restore_presented(grant, presented)
    return loaded


def _restore_presented(grant: Grant, presented: str) -> None:
    digest = token_digest(presented)
    for token in grant.issued_token:
        if token.value == digest:
            token.value = presented
        if token.based_on == digest:
            token.based_on = presented


def _load_node(
    loaded: Loaded,
    name: str,
    stored: StoredNode,
    cls: type,
    subordinates: set[str] | None,
) -> None:
    loaded.versions[name] = stored.version
    if stored.data is None:
        loaded.absent.add(name)
        return
    document = fastjson.loads(stored.data)
    if subordinates is not None:
        document["subordinate"] = sorted(subordinates)
        loaded.subordinates[name] = set(subordinates)
    node = cls().load(document)
    loaded.objects[name] = node
    # Stored documents are canonical dumps (sorted keys, digests for tokens),
    # so the stored text serves as the "before" for the diff without dumping
    # again. Were they ever to differ, as for a document that json.dumps
    # stored with spaces, the cost is one needless write.
    loaded.dumps[name] = stored.data


def prune_grant(grant: Grant, now: int) -> None:
    """Drop tokens that can no longer be used (idpyoidc keeps them all).

    Revoked and expired tokens go, and ID tokens, which are never looked up
    again. A used code stays until it expires so a replay is still detected.
    """
    grant.issued_token = [
        token
        for token in grant.issued_token
        if not token.revoked
        and token.token_class != "id_token"  # noqa: S105
        and not (token.expires_at and token.expires_at <= now)
    ]


def grant_ttl(grant: Grant, now: int) -> int:
    """Seconds the grant must live: until its last token expires, or 0."""
    if grant.revoked or not grant.issued_token:
        return 0
    expiries = [token.expires_at for token in grant.issued_token if token.expires_at]
    if grant.expires_at:
        expiries = [min(expiry, grant.expires_at) for expiry in expiries]
    if not expiries:
        return 0
    remaining = max(expiries) - now
    return remaining + EXPIRY_MARGIN if remaining > 0 else 0


def diff(loaded: Loaded, view: SessionView, now: int) -> Changes:
    """Compute the Redis writes that bring the stored branch in line with `view`."""
    changes = Changes()
    prefix = loaded.uid + DIVIDER
    for name, node in view.items():
        # idpyoidc also stores each grant under its encrypted session id; that
        # copy is an artefact and is never persisted.
        if name != loaded.uid and not name.startswith(prefix):
            continue
        parts = name.split(DIVIDER)
        if len(parts) == 3:
            _diff_grant(changes, loaded, name, parts, node, now)
        else:
            _diff_parent(changes, loaded, name, parts, node)
    if changes.writes and changes.parent_ttl:
        # Unchanged parents are not rewritten but must outlive the grant.
        changes.touched = parent_keys(loaded.uid, loaded.client_id)
    return changes


def _diff_grant(
    changes: Changes,
    loaded: Loaded,
    name: str,
    parts: list[str],
    grant: Grant,
    now: int,
) -> None:
    uid, client_id, grant_id = parts
    prune_grant(grant, now)
    ttl = grant_ttl(grant, now)
    key = grant_key(uid, client_id, grant_id)
    version = loaded.versions.get(name, 0)
    if ttl == 0:
        if version:
            changes.writes.append(Write(key, version, None))
            changes.removed.append((client_subordinates_key(uid, client_id), name))
        return

    changes.parent_ttl = max(changes.parent_ttl, ttl)
    document = _dump(grant)
    if document != loaded.dumps.get(name):
        changes.writes.append(Write(key, version, document, ttl))


def _diff_parent(
    changes: Changes, loaded: Loaded, name: str, parts: list[str], node: Any
) -> None:
    if len(parts) == 1:
        key, set_key = user_node_key(parts[0]), user_subordinates_key(parts[0])
    else:
        key = client_node_key(parts[0], parts[1])
        set_key = client_subordinates_key(parts[0], parts[1])

    document = _dump(node)
    if document != loaded.dumps.get(name):
        version = loaded.versions.get(name, 0)
        changes.writes.append(Write(key, version, document))

    before = loaded.subordinates.get(name, set())
    after = set(node.subordinate)
    changes.added += [(set_key, member) for member in sorted(after - before)]


class StateRunner:
    """Loads, runs, diffs and commits; retries the whole request on conflict."""

    def __init__(self, server: Server, store: SessionStore) -> None:
        self._server = server
        self._store = store

    @property
    def store(self) -> SessionStore:
        return self._store

    async def run(
        self,
        uid: str,
        client_id: str,
        grant_id: str | None,
        call: Callable[[], T],
        claims: dict[str, dict[str, Any]] | None = None,
        presented: str | None = None,
    ) -> T:
        """Run `call` with the branch of (uid, client_id, grant_id) in place.

        `presented` is the code or token the request carries, if any.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            branch = await self._store.fetch_branch(uid, client_id, grant_id)
            loaded = load_branch(branch, uid, client_id, grant_id, presented)
            result, changes = self._call(loaded, call, claims or {})
            if not changes:
                return result
            conflict = await self._store.commit(changes)
            if conflict is None:
                return result
            logger.info(
                "session state changed concurrently, retrying (attempt %d, key %s)",
                attempt,
                conflict,
            )
        raise StorageUnavailable("session state kept changing; gave up")

    async def peek(
        self, uid: str, client_id: str, grant_id: str, presented: str | None = None
    ) -> Grant | None:
        """Return the grant as stored, for reading only: nothing is written back."""
        branch = await self._store.fetch_branch(uid, client_id, grant_id)
        loaded = load_branch(branch, uid, client_id, grant_id, presented)
        grant: Grant | None = loaded.objects.get(
            uid + DIVIDER + client_id + DIVIDER + grant_id
        )
        return grant

    def _call(
        self,
        loaded: Loaded,
        call: Callable[[], T],
        claims: dict[str, dict[str, Any]],
    ) -> tuple[T, Changes]:
        # No await between the swap and the restore: the view belongs to this
        # request alone only while the event loop cannot switch tasks.
        database = self._server.context.session_manager.db
        original = database.db
        view = SessionView(loaded.objects, loaded.absent)
        token = prefetched_claims.set(claims)
        database.db = view
        try:
            result = call()
        finally:
            database.db = original
            prefetched_claims.reset(token)

        unexpected = {
            name
            for name in view.misses - set(view)
            if name == loaded.uid or name.startswith(loaded.uid + DIVIDER)
        }
        if unexpected:
            # Parents are always loaded, so this is a sibling grant; it stays
            # untouched in Redis, which is the safe outcome.
            logger.warning("idpyoidc looked for %d unloaded node(s)", len(unexpected))
        return result, diff(loaded, view, int(time.time()))
