"""Typed, frozen settings for porchlight_op and their loading and validation.

Precedence, highest first: overrides (command-line flags), PORCHLIGHT_<FIELD>
environment variables, the TOML file, the defaults below. Every problem raises
SettingsError with a one-line message of the form "<key>: <problem>".
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, urlsplit

__all__ = ["ClientSettings", "Settings", "SettingsError", "load_settings"]

ENV_PREFIX = "PORCHLIGHT_"
CONFIG_ENV = "PORCHLIGHT_CONFIG"

AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ACCESS_TOKEN_FORMATS = ("jwt", "opaque")
ENVIRONMENTS = ("development", "production")
SAMESITE_VALUES = ("Lax", "Strict")
DEFAULT_SCOPE = ("openid", "profile", "email", "offline_access")
LOCAL_HOSTNAMES = ("localhost", "127.0.0.1", "::1")

# Printable ASCII without space (VSCHAR of RFC 6749 appendix A minus space).
# Printable ASCII without space, ';', '{' or '}': idpyoidc joins ids with
# ";;" in session keys, and braces would break Redis Cluster hash tags.
_CLIENT_ID_RE = re.compile(r"[!-:<-z|~]{1,255}")
# Scope tokens are NQCHAR: printable ASCII except space, '"' and '\' (RFC 6749 3.3).
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Cookie names are HTTP tokens (RFC 6265 4.1.1, RFC 9110 5.6.2).
_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_CONTROL_OR_SPACE_RE = re.compile(r"[\x00-\x20\x7f]")
_MAX_SHOWN_VALUE = 80


class SettingsError(Exception):
    """Invalid or unknown setting; str() is the one line "<key>: <problem>"."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = " ".join(problem.split())
        super().__init__(f"{key}: {self.problem}")


def _show(value: object) -> str:
    """Format a value for an error message, shortened to one short line."""
    text = repr(value)
    if len(text) > _MAX_SHOWN_VALUE:
        text = text[: _MAX_SHOWN_VALUE - 3] + "..."
    return text


def _type_name(value: object) -> str:
    return type(value).__name__


# ---------------------------------------------------------------------------
# Type checks shared by TOML values, overrides and direct construction


def _check_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise SettingsError(key, f"must be a string, got {_type_name(value)}")
    return value


def _check_int(key: str, value: object) -> int:
    # bool is a subclass of int, but `port = true` is a mistake, not port 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(key, f"must be an integer, got {_type_name(value)}")
    return value


def _check_float(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(key, f"must be a number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise SettingsError(key, f"must be a finite number, got {_show(value)}")
    return float(value)


def _check_bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(key, f"must be true or false, got {_type_name(value)}")
    return value


def _check_str_tuple(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SettingsError(key, f"must be a list of strings, got {_type_name(value)}")
    for item in value:
        _check_str(key, item)
    return tuple(value)


def _check_positive(key: str, value: float) -> None:
    if value <= 0:
        raise SettingsError(key, f"must be greater than 0, got {_show(value)}")


# ---------------------------------------------------------------------------
# URL checks


def _split_url(key: str, url: str) -> SplitResult:
    if _CONTROL_OR_SPACE_RE.search(url):
        raise SettingsError(
            key, f"must not contain spaces or control characters: {_show(url)}"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError as err:
        raise SettingsError(key, f"invalid URL {_show(url)}: {err}") from None
    return parts


def _normalize_issuer(key: str, issuer: str) -> str:
    """Return the issuer without one trailing slash, or raise SettingsError."""
    parts = _split_url(key, issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            key, f"must be an absolute http(s) URL, got {_show(issuer)}"
        )
    if "@" in parts.netloc:
        raise SettingsError(key, "must not contain a user name or password")
    if "?" in issuer:
        raise SettingsError(key, f"must not contain a query, got {_show(issuer)}")
    if "#" in issuer:
        raise SettingsError(key, f"must not contain a fragment, got {_show(issuer)}")
    issuer = issuer.removesuffix("/")
    return issuer


# NOTE: our limit, not a standard's; it keeps authorization URLs with the
# redirect URI in them under the 8 KiB request lines that servers accept.
MAX_REDIRECT_URI_LENGTH = 2000
# Schemes that run or embed content in the browser instead of reaching an app.
_UNSAFE_REDIRECT_SCHEMES = frozenset(
    {"javascript", "data", "vbscript", "file", "blob", "about", "filesystem"}
)


def validate_redirect_uri(key: str, uri: str) -> None:
    """Raise SettingsError unless uri is an absolute URI without a fragment.

    http(s) URIs must name a host without wildcards; private-use schemes of
    native apps (RFC 8252 7.1) are allowed, script and data schemes are not.
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise SettingsError(
            key, f"must be at most {MAX_REDIRECT_URI_LENGTH} characters long"
        )
    parts = _split_url(key, uri)
    if not parts.scheme:
        raise SettingsError(key, f"must be an absolute URI, got {_show(uri)}")
    if "@" in parts.netloc:
        # https://app.example@evil.example/ reads like app.example to people.
        raise SettingsError(key, "must not contain a user name or password")
    if parts.scheme.lower() in _UNSAFE_REDIRECT_SCHEMES:
        raise SettingsError(key, f"must not use the {parts.scheme}: scheme")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise SettingsError(key, f"must name a host, got {_show(uri)}")
    if "*" in parts.netloc:
        raise SettingsError(key, f"must not contain a wildcard, got {_show(uri)}")
    if "#" in uri:
        raise SettingsError(key, f"must not contain a fragment, got {_show(uri)}")


def validate_backchannel_logout_uri(key: str, uri: str) -> None:
    """Raise SettingsError unless uri is an absolute http(s) URL without a fragment.

    Back-Channel Logout 1.0 section 2.2: the OP POSTs logout tokens to it.
    """
    parts = _split_url(key, uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(key, f"must be an absolute http(s) URL, got {_show(uri)}")
    if "@" in parts.netloc:
        raise SettingsError(key, "must not contain a user name or password")
    if "#" in uri:
        raise SettingsError(key, f"must not contain a fragment, got {_show(uri)}")


def redact_url(url: str) -> str:
    """Return url with any password replaced by "***", for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _validate_redis_url(key: str, url: str) -> None:
    parts = _split_url(key, url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            key,
            "must start with redis://, rediss:// or unix://, got "
            f"{_show(redact_url(url))}",
        )
    if parts.scheme == "unix" and not parts.path:
        raise SettingsError(key, "a unix:// URL must contain the socket path")
    if parts.scheme != "unix" and not parts.hostname:
        raise SettingsError(key, f"must name a host, got {_show(redact_url(url))}")


def _is_local_url(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTNAMES


# ---------------------------------------------------------------------------
# Clients


def _parse_scope(key: str, value: object) -> tuple[str, ...]:
    """Return the scope tokens of a string or list, without duplicates."""
    if isinstance(value, str):
        tokens: tuple[str, ...] = tuple(value.split())
    else:
        tokens = _check_str_tuple(key, value)
    if not tokens:
        raise SettingsError(key, "must contain at least one scope")
    for token in tokens:
        if not _SCOPE_TOKEN_RE.fullmatch(token):
            raise SettingsError(key, f"invalid scope token {_show(token)}")
    return tuple(dict.fromkeys(tokens))


@dataclass(frozen=True)
class ClientSettings:
    """A relying party registered in the config file."""

    client_id: str
    redirect_uris: tuple[str, ...]
    auth_method: str = "client_secret_basic"
    secret: str | None = field(default=None, repr=False)
    scope: tuple[str, ...] = DEFAULT_SCOPE
    name: str = ""
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    jwks: Mapping[str, Any] | None = None  # read from the TOML key jwks_file
    jwks_uri: str | None = None
    access_token_format: str = "jwt"  # noqa: S105 - a format name
    first_party: bool = False
    require_auth_time: bool = False

    def __post_init__(self) -> None:
        client_id = _check_str("clients", self.client_id)
        if not _CLIENT_ID_RE.fullmatch(client_id):
            raise SettingsError(
                f"clients.{_show(client_id)}",
                "client id must be 1 to 255 printable ASCII characters without "
                "spaces, ';', '{' or '}'",
            )
        prefix = f"clients.{client_id}"

        uris = _check_str_tuple(f"{prefix}.redirect_uris", self.redirect_uris)
        if not uris:
            raise SettingsError(
                f"{prefix}.redirect_uris", "must contain at least one URI"
            )
        for uri in uris:
            validate_redirect_uri(f"{prefix}.redirect_uris", uri)
        object.__setattr__(self, "redirect_uris", uris)

        method = _check_str(f"{prefix}.auth_method", self.auth_method)
        if method not in AUTH_METHODS:
            raise SettingsError(
                f"{prefix}.auth_method",
                f"must be one of {', '.join(AUTH_METHODS)}, got {_show(method)}",
            )
        self._validate_secret(prefix)

        object.__setattr__(self, "scope", _parse_scope(f"{prefix}.scope", self.scope))
        _check_str(f"{prefix}.name", self.name)
        _check_bool(f"{prefix}.first_party", self.first_party)
        _check_bool(f"{prefix}.require_auth_time", self.require_auth_time)
        self._validate_logout(prefix)

    def _validate_logout(self, prefix: str) -> None:
        key = f"{prefix}.post_logout_redirect_uris"
        uris = _check_str_tuple(key, self.post_logout_redirect_uris)
        for uri in uris:
            validate_redirect_uri(key, uri)
        object.__setattr__(self, "post_logout_redirect_uris", uris)
        if self.backchannel_logout_uri is not None:
            key = f"{prefix}.backchannel_logout_uri"
            validate_backchannel_logout_uri(
                key, _check_str(key, self.backchannel_logout_uri)
            )
        _check_bool(
            f"{prefix}.backchannel_logout_session_required",
            self.backchannel_logout_session_required,
        )
        self._validate_token_settings(prefix)

    def _validate_token_settings(self, prefix: str) -> None:
        grants = _check_str_tuple(f"{prefix}.grant_types", self.grant_types)
        for grant in grants:
            if grant not in GRANT_TYPES:
                raise SettingsError(
                    f"{prefix}.grant_types",
                    f"must be some of {', '.join(GRANT_TYPES)}, got {_show(grant)}",
                )
        if self.is_public and "client_credentials" in grants:
            raise SettingsError(
                f"{prefix}.grant_types",
                "a public client may not use client_credentials",
            )
        object.__setattr__(self, "grant_types", grants)
        if self.access_token_format not in ACCESS_TOKEN_FORMATS:
            raise SettingsError(
                f"{prefix}.access_token_format",
                f"must be jwt or opaque, got {_show(self.access_token_format)}",
            )
        if self.jwks_uri is not None:
            _check_str(f"{prefix}.jwks_uri", self.jwks_uri)
            if urlsplit(self.jwks_uri).scheme not in ("http", "https"):
                raise SettingsError(f"{prefix}.jwks_uri", "must be an http(s) URL")

    def _validate_secret(self, prefix: str) -> None:
        key = f"{prefix}.secret"
        if self.auth_method == "private_key_jwt":
            if self.secret is not None:
                raise SettingsError(key, "a private_key_jwt client has no secret")
            if (self.jwks is None) == (self.jwks_uri is None):
                raise SettingsError(
                    f"{prefix}.jwks_file",
                    "private_key_jwt needs exactly one of jwks_file and jwks_uri",
                )
            return
        if self.auth_method == "none":
            if self.secret is not None:
                raise SettingsError(
                    key, "a public client (auth_method none) must not have a secret"
                )
            return
        if self.secret is None:
            raise SettingsError(
                key, f"missing, but required for auth_method {self.auth_method}"
            )
        # The value itself is never shown because it is a credential.
        if not isinstance(self.secret, str):
            raise SettingsError(key, f"must be a string, got {_type_name(self.secret)}")
        if not self.secret.strip():
            raise SettingsError(key, "must not be empty")
        if self.auth_method == "client_secret_jwt" and len(self.secret) < 32:
            # RFC 7518 3.2: an HS256 key has at least 256 bits.
            raise SettingsError(
                key, "must have at least 32 characters for client_secret_jwt"
            )

    @property
    def is_public(self) -> bool:
        """True for a client without a secret (auth_method none)."""
        return self.auth_method == "none"


_CLIENT_KEYS = (
    "redirect_uris",
    "auth_method",
    "secret",
    "scope",
    "name",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "grant_types",
    "jwks_file",
    "jwks_uri",
    "access_token_format",
    "first_party",
    "require_auth_time",
)


def read_jwks_file(key: str, path: object) -> dict[str, Any]:
    """Read a JWK Set from a JSON file; raise SettingsError when it is not one."""
    name = _check_str(key, path)
    try:
        document = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(key, f"cannot read a JWK Set from {name}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SettingsError(key, f"{name} is not a JWK Set with a keys list")
    return document


def _parse_client(client_id: str, table: object) -> ClientSettings:
    prefix = f"clients.{client_id}"
    if isinstance(table, ClientSettings):
        if table.client_id != client_id:
            raise SettingsError(
                prefix, f"client_id {_show(table.client_id)} does not match"
            )
        return table
    if not isinstance(table, Mapping):
        raise SettingsError(prefix, f"must be a table, got {_type_name(table)}")
    for key in table:
        if key not in _CLIENT_KEYS:
            raise SettingsError(
                f"{prefix}.{key}",
                f"unknown client setting; known: {', '.join(_CLIENT_KEYS)}",
            )
    if "redirect_uris" not in table:
        raise SettingsError(f"{prefix}.redirect_uris", "missing")
    return ClientSettings(
        client_id=client_id,
        redirect_uris=_check_str_tuple(
            f"{prefix}.redirect_uris", table["redirect_uris"]
        ),
        auth_method=table.get("auth_method", "client_secret_basic"),
        secret=table.get("secret"),
        scope=table.get("scope", DEFAULT_SCOPE),
        name=table.get("name", ""),
        post_logout_redirect_uris=_check_str_tuple(
            f"{prefix}.post_logout_redirect_uris",
            table.get("post_logout_redirect_uris", ()),
        ),
        backchannel_logout_uri=table.get("backchannel_logout_uri"),
        backchannel_logout_session_required=table.get(
            "backchannel_logout_session_required", False
        ),
        grant_types=table.get("grant_types", ("authorization_code", "refresh_token")),
        jwks=(
            read_jwks_file(f"{prefix}.jwks_file", table["jwks_file"])
            if "jwks_file" in table
            else None
        ),
        jwks_uri=table.get("jwks_uri"),
        access_token_format=table.get("access_token_format", "jwt"),
        first_party=table.get("first_party", False),
        require_auth_time=table.get("require_auth_time", False),
    )


def _parse_clients(value: object) -> Mapping[str, ClientSettings]:
    if not isinstance(value, Mapping):
        raise SettingsError(
            "clients", f"must be a table of tables, got {_type_name(value)}"
        )
    clients: dict[str, ClientSettings] = {}
    for client_id, table in value.items():
        if not isinstance(client_id, str):
            raise SettingsError(
                "clients", f"client id must be a string, got {_show(client_id)}"
            )
        clients[client_id] = _parse_client(client_id, table)
    return MappingProxyType(clients)


# ---------------------------------------------------------------------------
# Settings


_LIFETIMES = (
    "code_lifetime",
    "access_token_lifetime",
    "id_token_lifetime",
    "refresh_token_lifetime",
    "session_idle_timeout",
    "session_max_age",
    "pending_request_lifetime",
    "claims_cache_ttl",
    "consent_lifetime",
)


@dataclass(frozen=True)
class Settings:
    """Validated configuration; lifetimes and timeouts are in seconds."""

    issuer: str = "http://localhost:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    shutdown_timeout: float = 10.0
    redis_url: str | None = field(default=None, repr=False)
    redis_cluster: bool = False
    data_dir: Path = Path("var")
    environment: str = "development"
    code_lifetime: int = 600
    access_token_lifetime: int = 3600
    id_token_lifetime: int = 3600
    refresh_token_lifetime: int = 2592000
    session_idle_timeout: int = 28800
    session_max_age: int = 86400
    pending_request_lifetime: int = 900
    claims_cache_ttl: int = 300
    cookie_name: str = "porchlight_session"
    cookie_samesite: str = "Lax"
    cookie_secure: bool | None = None
    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19456  # KiB
    argon2_parallelism: int = 1
    redis_socket_timeout: float = 1.0
    redis_connect_timeout: float = 1.0
    redis_max_connections: int = 50
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    clients: Mapping[str, ClientSettings] = field(default_factory=dict)
    key_rotation_delay: int = 86400
    key_poll_interval: float = 5.0
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window: int = 900
    login_lockout: int = 900
    login_slowdown_after: int = 3
    login_max_delay: float = 2.0
    backchannel_logout_timeout: float = 5.0  # per delivery attempt
    consent_lifetime: int = 31536000  # 365 days
    # The client id of the OP's own management area, itself a client of the OP.
    management_client_id: str = "porchlight-manage"

    def __post_init__(self) -> None:
        self._check_types()
        self._normalize()
        self._validate_values()
        self._validate_production()

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _check_types(self) -> None:
        for item in dataclasses.fields(self):
            check = _FIELD_CHECKS[item.name]
            self._set(item.name, check(item.name, getattr(self, item.name)))

    def _normalize(self) -> None:
        self._set("issuer", _normalize_issuer("issuer", self.issuer))
        self._set("log_level", self.log_level.upper())
        samesite = self.cookie_samesite.capitalize()
        if samesite in SAMESITE_VALUES:
            self._set("cookie_samesite", samesite)

    def _validate_management_client_id(self) -> None:
        if not self.management_client_id:
            raise SettingsError("management_client_id", "must not be empty")
        if self.management_client_id in self.clients:
            raise SettingsError(
                "management_client_id",
                f"{self.management_client_id!r} is also a [clients] table."
                " Choose another id for one of them.",
            )

    def _validate_values(self) -> None:
        if not self.host:
            raise SettingsError("host", "must not be empty")
        if not 1 <= self.port <= 65535:
            raise SettingsError("port", f"must be between 1 and 65535, got {self.port}")
        if self.redis_url is not None:
            _validate_redis_url("redis_url", self.redis_url)
        self._validate_redis_cluster()
        self._validate_management_client_id()
        if not str(self.data_dir) or str(self.data_dir) == ".":
            raise SettingsError("data_dir", "must name a directory")
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(
                "environment",
                f"must be development or production, got {_show(self.environment)}",
            )
        for name in _LIFETIMES:
            _check_positive(name, getattr(self, name))
        self._validate_cookie()
        self._validate_argon2()
        self._validate_keys_and_logins()
        _check_positive("workers", self.workers)
        _check_positive("shutdown_timeout", self.shutdown_timeout)
        _check_positive("redis_socket_timeout", self.redis_socket_timeout)
        _check_positive("redis_connect_timeout", self.redis_connect_timeout)
        _check_positive("redis_max_connections", self.redis_max_connections)
        _check_positive("backchannel_logout_timeout", self.backchannel_logout_timeout)
        for proxy in self.trusted_proxies:
            _validate_network("trusted_proxies", proxy)
        if self.log_level not in logging.getLevelNamesMapping():
            raise SettingsError(
                "log_level",
                f"must be a logging level such as DEBUG, INFO or WARNING, got "
                f"{_show(self.log_level)}",
            )

    def _validate_redis_cluster(self) -> None:
        if not self.redis_cluster:
            return
        if self.redis_url is None:
            raise SettingsError(
                "redis_cluster",
                "requires redis_url, because the embedded Redis is a single server "
                "and never a cluster",
            )
        if urlsplit(self.redis_url).scheme == "unix":
            raise SettingsError(
                "redis_url",
                "must start with redis:// or rediss:// when redis_cluster is true, "
                "because cluster nodes are reached over TCP",
            )

    def _validate_cookie(self) -> None:
        if not _COOKIE_NAME_RE.fullmatch(self.cookie_name):
            raise SettingsError(
                "cookie_name", f"must be an HTTP token, got {_show(self.cookie_name)}"
            )
        if self.cookie_samesite not in SAMESITE_VALUES:
            raise SettingsError(
                "cookie_samesite",
                f"must be Lax or Strict, got {_show(self.cookie_samesite)}. None is "
                f"rejected because it sends the session cookie on cross-site requests",
            )

    def _validate_keys_and_logins(self) -> None:
        if self.key_rotation_delay < 0:
            raise SettingsError(
                "key_rotation_delay",
                f"must be 0 or more, got {self.key_rotation_delay}",
            )
        # Bounded so a worker never signs with a stale key for long.
        if not 0.1 <= self.key_poll_interval <= 60:
            raise SettingsError(
                "key_poll_interval",
                f"must be between 0.1 and 60 seconds, got {self.key_poll_interval}",
            )
        for name in (
            "login_max_failures",
            "login_max_failures_per_address",
            "login_failure_window",
            "login_lockout",
            "login_slowdown_after",
        ):
            _check_positive(name, getattr(self, name))
        if not 0 <= self.login_max_delay <= 10:
            raise SettingsError(
                "login_max_delay",
                f"must be between 0 and 10 seconds, got {self.login_max_delay}",
            )

    def _validate_argon2(self) -> None:
        _check_positive("argon2_time_cost", self.argon2_time_cost)
        _check_positive("argon2_parallelism", self.argon2_parallelism)
        minimum = 8 * self.argon2_parallelism
        if self.argon2_memory_cost < minimum:
            raise SettingsError(
                "argon2_memory_cost",
                f"must be at least 8 KiB per lane ({minimum} KiB), got "
                f"{self.argon2_memory_cost}",
            )

    def _validate_production(self) -> None:
        if self.environment != "production":
            return
        if self.issuer.startswith("http://") and not _is_local_url(self.issuer):
            raise SettingsError(
                "issuer", "must use https when environment is production"
            )
        if self.redis_url is None:
            raise SettingsError(
                "redis_url",
                "missing. The embedded Redis is for development only, so set redis_url "
                "when environment is production",
            )

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies get the Secure flag: cookie_secure, else an https issuer."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.issuer.startswith("https://")

    def warnings(self) -> list[str]:
        """List the development-only defaults in use, for a WARNING log at start."""
        found: list[str] = []
        if self.redis_url is None:
            found.append(
                "redis_url is not set, so an embedded Redis is used (development only)"
            )
        if self.issuer.startswith("http://"):
            found.append(
                f"issuer {self.issuer} uses plain http (development only); use https"
            )
        if self.cookie_secure is False:
            found.append(
                "cookie_secure is false, so session cookies travel without TLS"
            )
        return found


def _validate_network(key: str, value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise SettingsError(
            key, f"must be IP addresses or networks, got {_show(value)}"
        ) from None


def _check_optional_str(key: str, value: object) -> str | None:
    return None if value is None else _check_str(key, value)


def _check_optional_bool(key: str, value: object) -> bool | None:
    return None if value is None else _check_bool(key, value)


def _check_path(key: str, value: object) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_check_str(key, value))


def _check_clients(key: str, value: object) -> Mapping[str, ClientSettings]:
    return _parse_clients(value)


_Check = Callable[[str, Any], Any]

_FIELD_CHECKS: dict[str, _Check] = {
    "issuer": _check_str,
    "host": _check_str,
    "port": _check_int,
    "workers": _check_int,
    "shutdown_timeout": _check_float,
    "redis_url": _check_optional_str,
    "redis_cluster": _check_bool,
    "data_dir": _check_path,
    "environment": _check_str,
    **{name: _check_int for name in _LIFETIMES},
    "cookie_name": _check_str,
    "management_client_id": _check_str,
    "cookie_samesite": _check_str,
    "cookie_secure": _check_optional_bool,
    "argon2_time_cost": _check_int,
    "argon2_memory_cost": _check_int,
    "argon2_parallelism": _check_int,
    "redis_socket_timeout": _check_float,
    "redis_connect_timeout": _check_float,
    "redis_max_connections": _check_int,
    "trusted_proxies": _check_str_tuple,
    "log_level": _check_str,
    "clients": _check_clients,
    "key_rotation_delay": _check_int,
    "key_poll_interval": _check_float,
    "login_max_failures": _check_int,
    "login_max_failures_per_address": _check_int,
    "login_failure_window": _check_int,
    "login_lockout": _check_int,
    "login_slowdown_after": _check_int,
    "login_max_delay": _check_float,
    "backchannel_logout_timeout": _check_float,
}

FIELD_NAMES = tuple(item.name for item in dataclasses.fields(Settings))


# ---------------------------------------------------------------------------
# Environment variables


def _env_int(key: str, text: str) -> int:
    if not _INT_RE.fullmatch(text.strip()):
        raise SettingsError(key, f"must be an integer, got {_show(text)}")
    return int(text)


def _env_float(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SettingsError(key, f"must be a number, got {_show(text)}") from None


def _env_bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise SettingsError(key, f"must be true, false, 1 or 0, got {_show(text)}")


def _env_tuple(key: str, text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _env_clients(key: str, text: str) -> object:
    raise SettingsError(key, "clients can only be set in the config file")


_ENV_PARSERS: dict[_Check, Callable[[str, str], object]] = {
    _check_int: _env_int,
    _check_float: _env_float,
    _check_bool: _env_bool,
    _check_optional_bool: lambda key, text: _env_bool(key, text) if text else None,
    _check_optional_str: lambda key, text: text or None,
    _check_str_tuple: _env_tuple,
    _check_clients: _env_clients,
}


def _from_environ(environ: Mapping[str, str]) -> dict[str, object]:
    """Parse the PORCHLIGHT_* variables into typed values keyed by field name."""
    values: dict[str, object] = {}
    for variable, text in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        if name not in _FIELD_CHECKS:
            raise SettingsError(variable, "unknown setting variable")
        parse = _ENV_PARSERS.get(_FIELD_CHECKS[name])
        values[name] = parse(variable, text) if parse else text
    return values


# ---------------------------------------------------------------------------
# TOML file


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise SettingsError("config", f"file not found: {path}") from None
    except OSError as err:
        raise SettingsError("config", f"cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError("config", f"invalid TOML in {path}: {err}") from None
    for key in data:
        if key not in _FIELD_CHECKS:
            raise SettingsError(key, f"unknown setting in {path}")
    return data


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Load, merge and validate settings from defaults, file, environment and overrides.

    The file is `path`, else the one named by PORCHLIGHT_CONFIG, else none. `environ`
    defaults to os.environ. Override values must already have the field's type.
    """
    if environ is None:
        environ = os.environ
    if path is None:
        path = environ.get(CONFIG_ENV) or None

    values: dict[str, object] = {}
    if path is not None:
        values.update(_read_toml(Path(path)))
    values.update(_from_environ(environ))
    for key, value in (overrides or {}).items():
        if key not in _FIELD_CHECKS:
            raise SettingsError(key, "unknown setting")
        values[key] = value

    return Settings(**values)  # type: ignore[arg-type]
