"""The porchlight-op command line: run the server and manage clients and users.

Exit status: 0 on success, 1 when a command fails (unknown id, Redis unreachable),
2 for invalid settings or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import getpass
import hashlib
import importlib.metadata
import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, TypeVar
from urllib.parse import urlencode

from redis.exceptions import RedisClusterException, RedisError

from porchlight_op.settings import (
    ACCESS_TOKEN_FORMATS,
    AUTH_METHODS,
    DEFAULT_SCOPE,
    GRANT_TYPES,
    ClientSettings,
    Settings,
    SettingsError,
    load_settings,
    read_jwks_file,
)
from porchlight_op.store.connection import (
    RedisClient,
    RedisUnavailableError,
    redis_client,
)
from porchlight_op.store.embedded import EmbeddedRedisError

__all__ = ["build_parser", "main"]

PROG = "porchlight-op"
DEFAULT_ISSUER = Settings.issuer
AUTHORIZATION_PATH = "/authorization"  # the path that oidc/config.py configures
DISCOVERY_PATH = "/.well-known/openid-configuration"

DEMO_CLIENT_ID = "demo-rp"
DEMO_REDIRECT_URIS = (
    "http://localhost:9000/callback",
    "http://127.0.0.1:9000/callback",
)
DEMO_USERNAME = "demo"
# The name of the SecretStore entry that contains the demo password, not a password.
DEMO_PASSWORD_SECRET = "demo-user-password"  # noqa: S105
DEMO_CLAIMS = {
    "name": "Demo User",
    "given_name": "Demo",
    "family_name": "User",
    "email": "demo@example.com",
    "email_verified": True,
}

T = TypeVar("T")


class CommandError(Exception):
    """A command failed for a reason the user can act on; str() is one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------
# Output


def _emit(args: argparse.Namespace, data: Any, lines: Sequence[str]) -> None:
    """Print data as one JSON document with --json, else the human-readable lines."""
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for line in lines:
        print(line)


def _timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _run(settings: Settings, action: Callable[[RedisClient], Awaitable[T]]) -> T:
    """Run one async action with a Redis client, embedded or configured."""

    async def with_client() -> T:
        async with redis_client(settings) as client:
            return await action(client)

    return asyncio.run(with_client())


# ---------------------------------------------------------------------------
# serve and demo


def _server_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """Apply --host, --port and --issuer; --port alone also moves the default issuer."""
    changes: dict[str, object] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
        if args.issuer is None and settings.issuer == DEFAULT_ISSUER:
            changes["issuer"] = f"http://localhost:{args.port}"
    if args.issuer is not None:
        changes["issuer"] = args.issuer
    if args.workers is not None:
        changes["workers"] = args.workers
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _start_server(settings: Settings) -> None:
    from porchlight_op.server import ListenError, run  # imports aiohttp, idpyoidc

    try:
        run(settings)
    except ListenError as err:
        raise CommandError(str(err)) from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the OpenID Provider until interrupted."""
    settings = _server_settings(args, settings)
    if args.json:
        listen = {
            "issuer": settings.issuer,
            "host": settings.host,
            "port": settings.port,
        }
        print(json.dumps(listen))
    _start_server(settings)
    return 0


def _pkce_pair() -> tuple[str, str]:
    """Return a PKCE code_verifier and its S256 code_challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


async def _ensure_demo_client(client: RedisClient) -> Any:
    from porchlight_op.models import Client
    from porchlight_op.store.clients import ClientStore

    store = ClientStore(client)
    existing = await store.get(DEMO_CLIENT_ID)
    if existing is not None:
        return existing
    demo = Client(
        client_id=DEMO_CLIENT_ID,
        redirect_uris=DEMO_REDIRECT_URIS,
        auth_method="client_secret_basic",
        secret=secrets.token_urlsafe(32),
        scope=DEFAULT_SCOPE,
        name="Demo relying party",
        created_at=int(time.time()),
    )
    await store.put(demo)
    return demo


async def _ensure_demo_user(client: RedisClient, settings: Settings) -> str:
    """Create the demo user if needed and return its password."""
    from porchlight_op.accounts.service import Accounts
    from porchlight_op.store.secrets import SecretStore

    stored = await SecretStore(client).get_or_create(
        DEMO_PASSWORD_SECRET, lambda: secrets.token_urlsafe(16).encode("ascii")
    )
    password = stored.decode("ascii")
    accounts = Accounts(client, settings)
    user = await accounts.find(DEMO_USERNAME)
    if user is None:
        await accounts.create_user(DEMO_USERNAME, password, dict(DEMO_CLAIMS))
    else:
        # Resetting keeps the printed password valid if someone changed it.
        await accounts.set_password(user.sub, password)
    return password


def _demo_details(
    settings: Settings, client_secret: str, password: str
) -> dict[str, str]:
    verifier, challenge = _pkce_pair()
    query = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": DEMO_REDIRECT_URIS[0],
        "scope": " ".join(DEFAULT_SCOPE),
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    authorization_url = f"{settings.issuer}{AUTHORIZATION_PATH}?{urlencode(query)}"
    return {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": client_secret,
        "username": DEMO_USERNAME,
        "password": password,
        "discovery_url": settings.issuer + DISCOVERY_PATH,
        "authorization_url": authorization_url,
        "code_verifier": verifier,
    }


def _print_demo_warning() -> None:
    bar = "!" * 72
    print(bar, file=sys.stderr)
    print(
        "WARNING: demo credentials are for development only. Never run `demo`\n"
        "on a server that others can reach.",
        file=sys.stderr,
    )
    print(bar, file=sys.stderr)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Create the demo client and user if missing, print them, then serve."""
    settings = _server_settings(args, settings)

    async def prepare(client: RedisClient) -> tuple[str, str]:
        demo_client = await _ensure_demo_client(client)
        password = await _ensure_demo_user(client, settings)
        return demo_client.secret, password

    client_secret, password = _run(settings, prepare)
    details = _demo_details(settings, client_secret, password)
    _print_demo_warning()
    _emit(args, details, [f"{key}: {value}" for key, value in details.items()])
    sys.stdout.flush()
    _start_server(settings)
    return 0


# ---------------------------------------------------------------------------
# client commands


def _client_data(client: Any, source: str) -> dict[str, Any]:
    """Describe a client without its secret."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "auth_method": client.auth_method,
        "secret": "set" if client.secret else "none",
        "redirect_uris": list(client.redirect_uris),
        "scope": " ".join(client.scope),
        "grant_types": " ".join(client.grant_types),
        "access_token_format": client.access_token_format,
        "jwks": "set" if client.jwks else "none",
        "jwks_uri": client.jwks_uri,
        "first_party": client.first_party,
        "require_auth_time": client.require_auth_time,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": (
            client.backchannel_logout_session_required
        ),
        "source": source,
    }


def _client_lines(data: Mapping[str, Any]) -> list[str]:
    lists = ("redirect_uris", "post_logout_redirect_uris")
    lines = [f"{key}: {value}" for key, value in data.items() if key not in lists]
    lines.extend(f"redirect_uri: {uri}" for uri in data["redirect_uris"])
    lines.extend(
        f"post_logout_redirect_uri: {uri}" for uri in data["post_logout_redirect_uris"]
    )
    return lines


def cmd_client_add(args: argparse.Namespace, settings: Settings) -> int:
    """Register a client in Redis, generating a secret for a confidential one."""
    from porchlight_op.store.clients import (
        ClientConflict,
        ClientStore,
        add_new_client,
        client_from_settings,
        new_client_secret,
    )

    given = args.secret
    if args.secret_stdin:
        if given is not None:
            raise CommandError("use either --secret or --secret-stdin, not both")
        given = read_password(sys.stdin, "client secret")
    keyless = ("none", "private_key_jwt")
    generated = given is None and args.auth_method not in keyless
    secret = new_client_secret() if generated else given
    spec = ClientSettings(
        client_id=args.client_id,
        redirect_uris=tuple(args.redirect_uri),
        auth_method=args.auth_method,
        secret=secret,
        scope=tuple(args.scope.split()),
        name=args.name,
        post_logout_redirect_uris=tuple(args.post_logout_redirect_uri or ()),
        backchannel_logout_uri=args.backchannel_logout_uri,
        backchannel_logout_session_required=args.backchannel_logout_session_required,
        grant_types=tuple(args.grant_type or ("authorization_code", "refresh_token")),
        jwks=(
            read_jwks_file("--jwks-file", args.jwks_file) if args.jwks_file else None
        ),
        jwks_uri=args.jwks_uri,
        access_token_format=args.access_token_format,
        first_party=args.first_party,
        require_auth_time=args.require_auth_time,
    )
    record = client_from_settings(spec, int(time.time()))

    async def add(client: RedisClient) -> None:
        try:
            await add_new_client(ClientStore(client), settings.clients, record)
        except ClientConflict as err:
            raise CommandError(str(err)) from None

    _run(settings, add)
    data = _client_data(record, "store")
    lines = [f"added client {record.client_id}"]
    if generated:
        data["secret"] = secret
        lines.append(f"secret: {secret}")
        lines.append("The secret is shown only this once; store it now.")
    _emit(args, data, lines)
    return 0


def cmd_client_list(args: argparse.Namespace, settings: Settings) -> int:
    """List the clients in Redis and in the config file."""
    from porchlight_op.store.clients import ClientStore

    async def load(client: RedisClient) -> list[Any]:
        return await ClientStore(client).list()

    stored = _run(settings, load)
    rows = [_client_data(item, "store") for item in stored]
    rows += [_client_data(item, "config") for item in settings.clients.values()]
    lines = [
        f"{row['client_id']}\t{row['auth_method']}\t{row['source']}\t{row['name']}"
        for row in rows
    ]
    _emit(args, rows, lines or ["no clients"])
    return 0


def cmd_client_show(args: argparse.Namespace, settings: Settings) -> int:
    """Show one client; the secret itself is never printed."""
    from porchlight_op.store.clients import ClientStore

    async def load(client: RedisClient) -> Any:
        return await ClientStore(client).get(args.client_id)

    found = _run(settings, load)
    if found is not None:
        data = _client_data(found, "store")
        data["created_at"] = _timestamp(found.created_at)
    elif args.client_id in settings.clients:
        data = _client_data(settings.clients[args.client_id], "config")
    else:
        raise CommandError(f"client {args.client_id!r} not found")
    _emit(args, data, _client_lines(data))
    return 0


def cmd_client_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Delete a client from Redis."""
    from porchlight_op.store.clients import ClientStore

    async def remove(client: RedisClient) -> bool:
        return await ClientStore(client).remove(args.client_id)

    if not _run(settings, remove):
        if args.client_id in settings.clients:
            raise CommandError(
                f"client {args.client_id!r} is defined in the config file, "
                "so remove it there"
            )
        raise CommandError(f"client {args.client_id!r} not found")
    _emit(args, {"removed": args.client_id}, [f"removed client {args.client_id}"])
    return 0


# ---------------------------------------------------------------------------
# user commands


def read_password(stream: IO[str], label: str = "password") -> str:
    """Read one secret line, dropping only the line ending; reject an empty one."""
    if stream.isatty():
        password = getpass.getpass(f"{label.capitalize()}: ")
    else:
        password = stream.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandError(f"{label} must not be empty")
    return password


def _user_data(user: Any) -> dict[str, Any]:
    """Describe a user without the password hash."""
    return {
        "sub": user.sub,
        "username": user.username,
        "password": "set" if user.password_hash else "none",
        "disabled": user.disabled,
        "groups": list(user.groups),
        "created_at": _timestamp(user.created_at),
        "updated_at": _timestamp(user.updated_at),
        "claims": user.to_dict()["claims"],
    }


def _user_claims(args: argparse.Namespace) -> dict[str, str]:
    options = {
        "email": args.email,
        "name": args.name,
        "given_name": args.given_name,
        "family_name": args.family_name,
    }
    return {claim: value for claim, value in options.items() if value is not None}


async def _find_user(client: RedisClient, settings: Settings, key: str) -> Any:
    """Return the user with this username or sub, or raise CommandError."""
    from porchlight_op.accounts.service import Accounts

    user = await Accounts(client, settings).find(key)
    if user is None:
        raise CommandError(f"user {key!r} not found")
    return user


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create a user and print its sub."""
    from porchlight_op.accounts.service import Accounts
    from porchlight_op.store.users import UsernameTaken

    password = read_password(sys.stdin) if args.password_stdin else None
    claims = _user_claims(args)

    async def add(client: RedisClient) -> Any:
        try:
            return await Accounts(client, settings).create_user(
                args.username, password, claims
            )
        except UsernameTaken:
            raise CommandError(f"user {args.username!r} already exists") from None
        except ValueError as err:
            raise CommandError(str(err)) from None

    user = _run(settings, add)
    _emit(args, {"sub": user.sub, "username": user.username}, [user.sub])
    return 0


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    """List every user."""
    from porchlight_op.accounts.service import Accounts

    async def load(client: RedisClient) -> list[Any]:
        return await Accounts(client, settings).list()

    users = _run(settings, load)
    rows = [{"sub": user.sub, "username": user.username} for user in users]
    lines = [f"{row['sub']}\t{row['username']}" for row in rows]
    _emit(args, rows, lines or ["no users"])
    return 0


def cmd_user_show(args: argparse.Namespace, settings: Settings) -> int:
    """Show one user; the password hash is never printed."""

    async def load(client: RedisClient) -> Any:
        return await _find_user(client, settings, args.user)

    data = _user_data(_run(settings, load))
    lines = [f"{key}: {value}" for key, value in data.items() if key != "claims"]
    lines += [f"claim {name}: {value}" for name, value in data["claims"].items()]
    _emit(args, data, lines)
    return 0


def cmd_user_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Delete a user."""
    from porchlight_op.accounts.service import Accounts

    async def remove(client: RedisClient) -> Any:
        user = await _find_user(client, settings, args.user)
        if not await Accounts(client, settings).remove(user.sub):
            raise CommandError(f"user {args.user!r} not found")
        return user

    user = _run(settings, remove)
    _emit(args, {"removed": user.sub}, [f"removed user {user.username} ({user.sub})"])
    return 0


def cmd_user_set_password(args: argparse.Namespace, settings: Settings) -> int:
    """Replace a user's password with one read from standard input."""
    from porchlight_op.accounts.service import Accounts

    password = read_password(sys.stdin)

    async def change(client: RedisClient) -> Any:
        user = await _find_user(client, settings, args.user)
        try:
            await Accounts(client, settings).set_password(user.sub, password)
        except (ValueError, LookupError) as err:
            raise CommandError(str(err)) from None
        return user

    user = _run(settings, change)
    _emit(args, {"sub": user.sub}, [f"password changed for {user.username}"])
    return 0


# ---------------------------------------------------------------------------
# Parser


def _version() -> str:
    for distribution in ("porchlight-op", "porchlight_op"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    import porchlight_op

    return str(getattr(porchlight_op, "__version__", "unknown"))


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="TOML settings file (default: $PORCHLIGHT_CONFIG, else built-in defaults)",
    )
    common.add_argument(
        "--json", action="store_true", help="print machine-readable JSON on stdout"
    )
    return common


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (setting: host)")
    parser.add_argument(
        "--port",
        type=int,
        help="TCP port to listen on (setting: port); with the default issuer, "
        "also the issuer's port",
    )
    parser.add_argument("--issuer", metavar="URL", help="issuer URL (setting: issuer)")
    parser.add_argument(
        "--workers",
        type=int,
        help="number of server processes sharing the port (setting: workers)",
    )


def _add_logout_arguments(add: argparse.ArgumentParser) -> None:
    add.add_argument(
        "--post-logout-redirect-uri",
        metavar="URI",
        action="append",
        help="allowed post_logout_redirect_uri after logout; repeat for several",
    )
    add.add_argument(
        "--backchannel-logout-uri",
        metavar="URI",
        help="http(s) URL the OP POSTs a logout token to when the user logs out",
    )
    add.add_argument(
        "--backchannel-logout-session-required",
        action="store_true",
        help="the client requires the sid claim in logout tokens and ID tokens",
    )


def _add_token_options(add: argparse.ArgumentParser) -> None:
    add.add_argument(
        "--grant-type",
        choices=GRANT_TYPES,
        action="append",
        help="grant type the client may use; repeat for several "
        "(default: authorization_code and refresh_token)",
    )
    add.add_argument(
        "--jwks-file",
        metavar="PATH",
        help="JSON file with the client's public JWK Set (private_key_jwt)",
    )
    add.add_argument(
        "--jwks-uri",
        metavar="URI",
        help="URL of the client's public JWK Set (private_key_jwt)",
    )
    add.add_argument(
        "--access-token-format",
        choices=ACCESS_TOKEN_FORMATS,
        default="jwt",
        help="jwt (RFC 9068, the default) or opaque reference tokens",
    )


def _add_client_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    client = commands.add_parser("client", help="manage registered clients")
    actions = client.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", parents=[common], help="register a client")
    add.add_argument("client_id", metavar="CLIENT_ID")
    add.add_argument(
        "--redirect-uri",
        metavar="URI",
        action="append",
        required=True,
        help="allowed redirect URI; repeat for several",
    )
    add.add_argument(
        "--auth-method",
        choices=AUTH_METHODS,
        default="client_secret_basic",
        help="token endpoint authentication (default: client_secret_basic)",
    )
    add.add_argument(
        "--secret",
        metavar="S",
        help="client secret; visible in the process list, so omit it to have a "
        "strong one generated and printed once, or use --secret-stdin",
    )
    add.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the client secret from the first line of standard input",
    )
    add.add_argument(
        "--scope",
        default=" ".join(DEFAULT_SCOPE),
        help='space-separated scopes the client may request (default: "%(default)s")',
    )
    add.add_argument("--name", metavar="N", default="", help="display name")
    _add_logout_arguments(add)
    _add_token_options(add)
    add.add_argument(
        "--first-party",
        action="store_true",
        help="skip the consent page for this client (offline_access is still "
        "asked once)",
    )
    add.add_argument(
        "--require-auth-time",
        action="store_true",
        help="always put auth_time in this client's ID tokens",
    )
    add.set_defaults(handler=cmd_client_add)

    listing = actions.add_parser("list", parents=[common], help="list clients")
    listing.set_defaults(handler=cmd_client_list)
    for name, handler, summary in (
        ("show", cmd_client_show, "show one client (never its secret)"),
        ("remove", cmd_client_remove, "delete a client"),
    ):
        action = actions.add_parser(name, parents=[common], help=summary)
        action.add_argument("client_id", metavar="CLIENT_ID")
        action.set_defaults(handler=handler)


def _add_user_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    user = commands.add_parser("user", help="manage user accounts")
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", parents=[common], help="create a user, print its sub"
    )
    add.add_argument("username", metavar="USERNAME")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin; without it the user "
        "has no password",
    )
    add.add_argument("--email", metavar="E", help="email claim")
    add.add_argument("--name", metavar="N", help="name claim (full name)")
    add.add_argument("--given-name", metavar="G", help="given_name claim")
    add.add_argument("--family-name", metavar="F", help="family_name claim")
    add.set_defaults(handler=cmd_user_add)

    listing = actions.add_parser("list", parents=[common], help="list users")
    listing.set_defaults(handler=cmd_user_list)
    for name, handler, summary in (
        ("show", cmd_user_show, "show one user (never the password hash)"),
        ("remove", cmd_user_remove, "delete a user"),
        ("set-password", cmd_user_set_password, "replace a user's password"),
    ):
        action = actions.add_parser(name, parents=[common], help=summary)
        action.add_argument("user", metavar="USERNAME_OR_SUB")
        if name == "set-password":
            action.add_argument(
                "--password-stdin",
                action="store_true",
                required=True,
                help="read the new password from the first line of stdin",
            )
        action.set_defaults(handler=handler)
    _add_user_disable_commands(actions, common)


def _add_user_disable_commands(actions: Any, common: argparse.ArgumentParser) -> None:
    for name, handler, summary in (
        (
            "disable",
            cmd_user_disable,
            "refuse the user's logins and revoke their sessions and tokens now",
        ),
        ("enable", cmd_user_enable, "allow a disabled user to log in again"),
    ):
        action = actions.add_parser(name, parents=[common], help=summary)
        action.add_argument("user", metavar="USERNAME_OR_SUB")
        action.set_defaults(handler=handler)


def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> int:
    """Disable a user, which ends their logins and revokes their grants."""
    return _set_user_disabled(args, settings, True)


def cmd_user_enable(args: argparse.Namespace, settings: Settings) -> int:
    """Enable a disabled user again."""
    return _set_user_disabled(args, settings, False)


def _set_user_disabled(
    args: argparse.Namespace, settings: Settings, disabled: bool
) -> int:
    from porchlight_op.accounts.service import Accounts, UserNotFound

    async def change(client: RedisClient) -> Any:
        user = await _find_user(client, settings, args.user)
        try:
            return await Accounts(client, settings).set_disabled(user.sub, disabled)
        except UserNotFound:
            raise CommandError(f"user {args.user!r} not found") from None

    user = _run(settings, change)
    state = "disabled" if disabled else "enabled"
    _emit(
        args,
        {"sub": user.sub, "disabled": user.disabled},
        [f"{state} user {user.username} ({user.sub})"],
    )
    return 0


# ---------------------------------------------------------------------------
# signing key commands


def _key_data(status: Any) -> dict[str, Any]:
    """Describe a keyring key without its private parts."""
    key = status.key

    def when(seconds: int | None) -> str | None:
        return None if seconds is None else _timestamp(seconds)

    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": status.state,
        "created_at": when(key.created_at),
        "activate_at": when(key.activate_at),
        "retired_at": when(status.retired_at),
        "retire_until": when(status.retire_until),
    }


def _key_retention(settings: Settings) -> int:
    from porchlight_op.store.keyring import retention_for

    return retention_for(settings.access_token_lifetime, settings.id_token_lifetime)


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    """Show each signing key and its state now."""
    from porchlight_op.store.keyring import KeyringStore, key_states

    async def load(client: RedisClient) -> list[Any]:
        _, stored = await KeyringStore(client).load()
        return stored

    stored = _run(settings, load)
    rows = [
        _key_data(status)
        for status in key_states(stored, time.time(), _key_retention(settings))
    ]
    lines = [
        f"{row['kid']}\t{row['alg']}\t{row['state']}\tactivate_at "
        f"{row['activate_at']}\tretire_until {row['retire_until'] or '-'}"
        for row in rows
    ]
    _emit(args, rows, lines or ["no signing keys; the server creates them at start"])
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Publish new signing keys that start signing after the delay."""
    from porchlight_op.store.keyring import KeyringStore

    delay = settings.key_rotation_delay if args.delay is None else args.delay
    if delay < 0:
        raise CommandError(f"--delay must be 0 or more seconds, got {delay}", 2)

    async def rotate(client: RedisClient) -> list[Any]:
        return await KeyringStore(client).rotate(delay, _key_retention(settings))

    added = _run(settings, rotate)
    rows = [
        {"kid": key.kid, "alg": key.alg, "activate_at": _timestamp(key.activate_at)}
        for key in added
    ]
    lines = [
        f"published {row['kid']} ({row['alg']}); it signs from {row['activate_at']}"
        for row in rows
    ]
    _emit(args, rows, lines)
    return 0


def _add_key_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("keys", help="list and rotate the signing keys")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", parents=[common], help="show each signing key and its state"
    )
    listing.set_defaults(handler=cmd_keys_list)

    rotate = actions.add_parser(
        "rotate",
        parents=[common],
        help="publish new RSA and EC keys that start signing after a delay",
    )
    rotate.add_argument(
        "--delay",
        type=int,
        metavar="SECONDS",
        help="seconds between publishing the new keys and signing with them "
        "(default: the key_rotation_delay setting)",
    )
    rotate.set_defaults(handler=cmd_keys_rotate)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print whether Redis replies, key counts per kind and memory use."""
    from porchlight_op.store.status import collect_status

    async def load(client: RedisClient) -> dict[str, Any]:
        return await collect_status(client, settings.cookie_name)

    report = _run(settings, load)
    lines = [
        f"redis: {report['redis']} (version {report['redis_version']}, "
        f"{report['round_trip_ms']} ms round trip)",
        f"memory: {report['used_memory_human']}",
        f"keys: {report['keys_total']}",
    ]
    lines += [f"  {kind}: {count}" for kind, count in report["keys"].items()]
    _emit(args, report, lines)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="porchlight_op, an OpenID Connect Provider."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    serve = commands.add_parser("serve", parents=[common], help="run the server")
    _server_options(serve)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo", parents=[common], help="create a demo client and user, then serve"
    )
    _server_options(demo)
    demo.set_defaults(handler=cmd_demo)

    status = commands.add_parser(
        "status", parents=[common], help="show Redis reachability, key counts, memory"
    )
    status.set_defaults(handler=cmd_status)

    _add_client_commands(commands, common)
    _add_user_commands(commands, common)
    _add_key_commands(commands, common)
    from porchlight_op.invite_commands import add_invite_commands  # imports this module

    add_invite_commands(commands, common)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    """Log warnings and errors to stderr, except for commands that run the server.

    run_server configures logging itself at settings.log_level.
    """
    if args.command not in ("serve", "demo"):
        logging.basicConfig(
            level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )


def _fail(message: str, exit_code: int) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        _configure_logging(args)
        result: int = args.handler(args, settings)
        return result
    except SettingsError as err:
        return _fail(str(err), 2)
    except CommandError as err:
        return _fail(str(err), err.exit_code)
    except (RedisUnavailableError, EmbeddedRedisError) as err:
        return _fail(str(err), 1)
    except (RedisError, RedisClusterException) as err:
        return _fail(f"Redis command failed: {err}", 1)


if __name__ == "__main__":
    sys.exit(main())
