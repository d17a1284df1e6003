"""Every Redis key name the OP uses, in one place.

All keys start with "pl:". Keys that belong to one user carry the hash tag
"{<sub>}", so Redis Cluster puts them in one slot and a single command or MULTI
may touch several of them (for example the user record and its claims cache).
Keys with different hash tags, or none, may land on different nodes: touch them
with separate commands, never with one multi-key command or one MULTI.

Pending requests expire after Settings.pending_request_lifetime, cached
claims after Settings.claims_cache_ttl, and a user's consent to a client after
Settings.consent_lifetime. The fixed lifetimes are below.
"""

from __future__ import annotations

PREFIX = "pl"

# Seconds a username stays reserved while its user record is being written. The
# key becomes permanent once the record exists.
USERNAME_RESERVATION_TTL = 60


def _user_tag(sub: str) -> str:
    # A brace inside sub would end the hash tag early and move the key to another
    # slot than the user's other keys.
    if not sub or "{" in sub or "}" in sub:
        raise ValueError(f"invalid sub {sub!r}: empty or contains a brace")
    return "{" + sub + "}"


def user(sub: str) -> str:
    """Key of a user's JSON record (string)."""
    return f"{PREFIX}:{_user_tag(sub)}:user"


def claims(sub: str) -> str:
    """Key of a user's cached claims (string with a TTL), in the slot of user(sub)."""
    return f"{PREFIX}:{_user_tag(sub)}:claims"


def session_prefix(sub: str) -> str:
    """Prefix of a user's login and grant session keys, in the slot of user(sub)."""
    return f"{PREFIX}:{_user_tag(sub)}:s:"


def consent(sub: str, client_id: str) -> str:
    """Key of the set of scopes a user granted a client, in the slot of user(sub)."""
    return f"{PREFIX}:{_user_tag(sub)}:consent:{client_id}"


def username(normalized: str) -> str:
    """Key mapping a normalized username to its sub (string)."""
    return f"{PREFIX}:username:{normalized}"


def users_index() -> str:
    """Key of the set of every user's sub."""
    return f"{PREFIX}:users"


def client(client_id: str) -> str:
    """Key of a client's JSON record (string)."""
    return f"{PREFIX}:client:{client_id}"


def clients_index() -> str:
    """Key of the set of every client_id."""
    return f"{PREFIX}:clients"


def secret(name: str) -> str:
    """Key of a shared server secret (bytes), written once with SET NX."""
    return f"{PREFIX}:secret:{name}"


def pending(request_id: str) -> str:
    """Key of an authorization request waiting for the user to log in (JSON, TTL)."""
    return f"{PREFIX}:pending:{request_id}"


def web_session_prefix() -> str:
    """Prefix of the browser session keys that aiohttp-session stores."""
    return f"{PREFIX}:websession:"
