"""Every Redis key name the OP uses, in one place.

All keys start with "pl:". Keys that belong to one user carry the hash tag
"{<sub>}", so Redis Cluster puts them in one slot and a single command or MULTI
may touch several of them (for example the user record and its claims cache).
Keys with different hash tags, or none, may land on different nodes: touch them
with separate commands, never with one multi-key command or one MULTI.

Pending requests expire after Settings.pending_request_lifetime, cached
claims after Settings.claims_cache_ttl, and a user's consent to a client after
Settings.consent_lifetime. Login failure counters expire after
Settings.login_failure_window, or Settings.login_lockout once they lock. The
keyring lives until a rotation removes its expired keys. The fixed lifetimes
are below.
"""

from __future__ import annotations

import hashlib

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


def configured_clients() -> str:
    """Key of the set of client ids that came from the settings file."""
    return f"{PREFIX}:clients:configured"


def secret(name: str) -> str:
    """Key of a shared server secret (bytes), written once with SET NX."""
    return f"{PREFIX}:secret:{name}"


def pending(request_id: str) -> str:
    """Key of an authorization request waiting for the user to log in (JSON, TTL)."""
    return f"{PREFIX}:pending:{request_id}"


def web_session_prefix() -> str:
    """Prefix of the browser session keys that aiohttp-session stores."""
    return f"{PREFIX}:websession:"


# The keyring's keys share the hash tag "{keyring}", so one script can change the
# keys and bump the version together, also in Redis Cluster.
def keyring() -> str:
    """Key of the signing keyring: a hash of kid to the key's JSON record."""
    return f"{PREFIX}:{{keyring}}:keys"


def keyring_version() -> str:
    """Key of the keyring's version counter, incremented on every change."""
    return f"{PREFIX}:{{keyring}}:version"


def login_failures_user(normalized: str) -> str:
    """Key counting failed logins for one normalized username (integer, TTL).

    The name is hashed, because unknown usernames are counted too and may be
    arbitrary text.
    """
    digest = hashlib.sha256(normalized.encode("utf-8")).hexdigest()
    return f"{PREFIX}:loginfail:user:{digest}"


def login_failures_address(address: str) -> str:
    """Key counting failed logins from one client address (integer, TTL)."""
    return f"{PREFIX}:loginfail:addr:{address}"


def login_session_grants(sub: str, sid: str) -> str:
    """Key of the set of grants issued under one browser login (JSON members).

    It lives as long as the login session may (Settings.session_max_age).
    """
    return f"{PREFIX}:{_user_tag(sub)}:ls:{sid}:grants"


def backchannel_logout_jobs() -> str:
    """Key of the sorted set of back-channel logout deliveries, scored by due time.

    Members are JSON jobs; each leaves the set when a worker claims it.
    """
    return f"{PREFIX}:backchannel-logout:jobs"


def assertion_jti(client_id: str, jti: str) -> str:
    """Key marking a client assertion's jti as used (string, TTL until its exp)."""
    return f"{PREFIX}:jti:{client_id}:{jti}"


def client_jwks(client_id: str) -> str:
    """Key of a client's JWK Set fetched from its jwks_uri (JSON, TTL)."""
    return f"{PREFIX}:jwks:{client_id}"


def opaque_token(digest: str) -> str:
    """Key of an opaque access token: its encrypted JWT (bytes, the token's TTL)."""
    return f"{PREFIX}:at:{digest}"


def revoked_token(jti: str) -> str:
    """Key marking a client credentials access token as revoked (TTL until exp)."""
    return f"{PREFIX}:revoked:{jti}"


def cors_origins() -> str:
    """Key of the set of origins of every registered redirect URI (CORS)."""
    return f"{PREFIX}:cors-origins"


def invitation(digest: str) -> str:
    """Key of an invitation, named by its token's SHA-256 hex digest (hash, TTL).

    The key expires with the invitation. Using or revoking it only changes its
    state field, so the key stays until then.
    """
    return f"{PREFIX}:invite:{digest}"


def invitations_index() -> str:
    """Key of the set of invitation digests; members whose key expired are stale."""
    return f"{PREFIX}:invites"


def passkeys(sub: str) -> str:
    """Key of a user's passkeys: a hash of credential id (base64url) to JSON record."""
    return f"{PREFIX}:{_user_tag(sub)}:passkeys"


def passkey_owner(credential_id: bytes) -> str:
    """Key mapping a WebAuthn credential id to the sub that owns it (string).

    The id is hashed, because it is chosen by the authenticator and may be up
    to 1023 bytes long.
    """
    digest = hashlib.sha256(credential_id).hexdigest()
    return f"{PREFIX}:passkey:{digest}"


def webauthn_ceremony(ceremony_id: str) -> str:
    """Key of a WebAuthn ceremony's challenge and binding (JSON, TTL of minutes)."""
    return f"{PREFIX}:webauthn:{ceremony_id}"


def webauthn_challenge_count(address: str) -> str:
    """Key counting passkey challenges handed to one client address (integer, TTL).

    It expires one rate window after its first challenge.
    """
    return f"{PREFIX}:webauthn-rate:{address}"


def user_logins(sub: str) -> str:
    """Key of the hash of a user's live browser logins, by login session id.

    Each value is a JSON record of the login. The key expires
    Settings.session_max_age after the user's newest login; older entries whose
    limits passed are dropped when the hash is read.
    """
    return f"{PREFIX}:{_user_tag(sub)}:logins"
