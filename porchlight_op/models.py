"""User and Client records as stored in Redis, with their JSON forms."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import fastjson

USERNAME_MAX_LENGTH = 64
# Inputs longer than this are rejected before normalization does any work on them.
USERNAME_MAX_INPUT_LENGTH = 1024

# Standard claims a user record may carry (OIDC Core 5.1). `sub` and `updated_at`
# are absent because they come from User.sub and User.updated_at.
STRING_CLAIMS = frozenset(
    {
        "name",
        "given_name",
        "family_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "email",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
    }
)
BOOLEAN_CLAIMS = frozenset({"email_verified", "phone_number_verified"})
ADDRESS_FIELDS = frozenset(
    {
        "formatted",
        "street_address",
        "locality",
        "region",
        "postal_code",
        "country",
    }
)
STANDARD_CLAIMS = STRING_CLAIMS | BOOLEAN_CLAIMS | {"address"}

# OIDC Core 5.1: YYYY-MM-DD, or YYYY alone, or 0000-MM-DD when the year is withheld.
BIRTHDATE_PATTERN = re.compile(r"\d{4}(-\d{2}-\d{2})?")

AUTH_METHODS = frozenset(
    {
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    }
)
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
ACCESS_TOKEN_FORMATS = frozenset({"jwt", "opaque"})

# Members of this group are administrators.
ADMIN_GROUP = "admin"


def normalize_username(name: str) -> str:
    """Return the form of a username used for lookups and uniqueness.

    Strips surrounding whitespace, applies NFC, case folds (so "ß" matches "ss" and
    "ﬁ" matches "fi") and applies NFC again. Compatibility forms such as fullwidth
    letters are not folded, so "Ａ" and "a" stay distinct. Raises ValueError for an
    empty name, control or format characters, whitespace other than a plain space,
    or more than USERNAME_MAX_LENGTH characters after normalization.
    """
    if len(name) > USERNAME_MAX_INPUT_LENGTH:
        raise ValueError(
            f"invalid username: {len(name)} characters given,"
            f" the maximum is {USERNAME_MAX_LENGTH}"
        )
    folded = unicodedata.normalize("NFC", name.strip())
    folded = unicodedata.normalize("NFC", folded.casefold())
    if not folded:
        raise ValueError("invalid username: empty")
    for char in folded:
        _check_username_char(char)
    if len(folded) > USERNAME_MAX_LENGTH:
        raise ValueError(
            f"invalid username: longer than {USERNAME_MAX_LENGTH} characters"
            f" ({len(folded)} after normalization)"
        )
    return folded


def _check_username_char(char: str) -> None:
    category = unicodedata.category(char)
    # Rejects categories Cc (control), Cf (format: bidi overrides, zero-width),
    # Cs, Co and Cn (surrogate, private use, unassigned), and Zl and Zp (line
    # and paragraph separators).
    if category.startswith("C") or category in ("Zl", "Zp"):
        raise ValueError(
            f"invalid username: contains the control or format character"
            f" U+{ord(char):04X}"
        )
    if char.isspace() and char != " ":
        raise ValueError(
            f"invalid username: contains the whitespace character U+{ord(char):04X}."
            " Only a plain space is allowed"
        )


class InvalidClaim(ValueError):
    """Raised for a claim that is not standard or whose value has the wrong form."""


def validate_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Return a plain copy of the claims, raising InvalidClaim for a bad one."""
    checked: dict[str, Any] = {}
    for name, value in claims.items():
        if name == "address":
            checked[name] = _validate_address(value)
        elif name in STRING_CLAIMS:
            checked[name] = _validate_string_claim(name, value)
        elif name in BOOLEAN_CLAIMS:
            if not isinstance(value, bool):
                raise InvalidClaim(f"invalid claim {name!r}: expected true or false")
            checked[name] = value
        else:
            raise InvalidClaim(
                f"invalid claim {name!r}: not a standard claim of OIDC Core 5.1"
                " (sub and updated_at are set by the server)"
            )
    return checked


def _validate_string_claim(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidClaim(f"invalid claim {name!r}: expected a string")
    if name == "birthdate" and not BIRTHDATE_PATTERN.fullmatch(value):
        raise InvalidClaim(
            f"invalid claim 'birthdate': {value!r} is not YYYY-MM-DD or YYYY"
        )
    return value


def _validate_address(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidClaim("invalid claim 'address': expected an object")
    address: dict[str, str] = {}
    for part, text in value.items():
        if part not in ADDRESS_FIELDS:
            raise InvalidClaim(
                f"invalid claim 'address': unknown field {part!r}"
                " (OIDC Core 5.1.1 lists the allowed fields)"
            )
        if not isinstance(text, str):
            raise InvalidClaim(f"invalid claim 'address': {part!r} must be a string")
        address[part] = text
    return address


@dataclass(frozen=True)
class User:
    """An account: its subject id, login name, password hash and profile claims."""

    sub: str
    username: str
    password_hash: str | None = field(repr=False)
    claims: Mapping[str, Any]
    created_at: int
    updated_at: int  # last change of the claims, sent as the updated_at claim
    disabled: bool = False
    # Group names; ADMIN_GROUP marks an administrator.
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validates the claims and freezes a copy, so callers cannot change a
        # User through the mapping they passed in.
        object.__setattr__(self, "groups", tuple(self.groups))
        claims: dict[str, Any] = validate_claims(self.claims)
        if "address" in claims:
            claims["address"] = MappingProxyType(claims["address"])
        object.__setattr__(self, "claims", MappingProxyType(claims))

    def oidc_claims(self) -> dict[str, Any]:
        """Return the user's standard claims with `sub` and `updated_at` added."""
        result: dict[str, Any] = {"sub": self.sub}
        for name, value in self.claims.items():
            result[name] = dict(value) if name == "address" else value
        result["updated_at"] = self.updated_at
        return result

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        claims = {
            name: dict(value) if name == "address" else value
            for name, value in self.claims.items()
        }
        return {
            "sub": self.sub,
            "username": self.username,
            "password_hash": self.password_hash,
            "claims": claims,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "disabled": self.disabled,
            "groups": list(self.groups),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> User:
        """Build a User from to_dict() output; KeyError if a field is absent."""
        return cls(
            sub=data["sub"],
            username=data["username"],
            password_hash=data["password_hash"],
            claims=data["claims"],
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            disabled=bool(data.get("disabled", False)),
            # Records written before groups existed have none.
            groups=tuple(data.get("groups", ())),
        )

    def to_json(self) -> str:
        """Serialize the user for storage."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> User:
        """Parse a user written by to_json()."""
        return cls.from_dict(json.loads(raw))


@dataclass(frozen=True)
class Client:
    """A registered relying party."""

    client_id: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    secret: str | None = field(repr=False)
    scope: tuple[str, ...]
    name: str = ""
    created_at: int = 0
    # OpenID Connect RP-Initiated Logout 1.0 and Back-Channel Logout 1.0.
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    # Public keys for private_key_jwt: an inline JWK Set, or a URL to fetch it.
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None
    access_token_format: str = "jwt"  # noqa: S105 - jwt (RFC 9068) or opaque
    # A client run by the OP's operator: its users are not asked for consent,
    # except once for offline_access.
    first_party: bool = False
    # Put auth_time in every ID token, not only when max_age was sent (OIDC
    # Dynamic Client Registration 2).
    require_auth_time: bool = False

    def __post_init__(self) -> None:
        # JSON gives lists, so convert them to keep the dataclass hashable and frozen.
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(
            self, "post_logout_redirect_uris", tuple(self.post_logout_redirect_uris)
        )
        object.__setattr__(self, "scope", tuple(self.scope))
        object.__setattr__(self, "grant_types", tuple(self.grant_types))
        if self.auth_method not in AUTH_METHODS:
            raise ValueError(
                f"invalid auth_method {self.auth_method!r} for client"
                f" {self.client_id!r}: expected one of {sorted(AUTH_METHODS)}"
            )
        self._check_token_settings()
        if self.is_public and self.secret is not None:
            raise ValueError(
                f"client {self.client_id!r} uses auth_method 'none' and must not"
                " have a secret"
            )
        if self.auth_method == "private_key_jwt":
            self._check_key_source()
            return
        if self.auth_method == "client_secret_jwt" and len(self.secret or "") < 32:
            # RFC 7518 3.2: an HS256 key has at least 256 bits.
            raise ValueError(
                f"client {self.client_id!r} uses client_secret_jwt and needs a"
                " secret of at least 32 characters"
            )
        if not self.is_public and not self.secret:
            raise ValueError(
                f"client {self.client_id!r} uses {self.auth_method!r}"
                " and needs a secret"
            )

    def _check_token_settings(self) -> None:
        unknown = set(self.grant_types) - GRANT_TYPES
        if unknown:
            raise ValueError(
                f"invalid grant_types {sorted(unknown)} for client"
                f" {self.client_id!r}: expected some of {sorted(GRANT_TYPES)}"
            )
        if self.is_public and "client_credentials" in self.grant_types:
            raise ValueError(
                f"client {self.client_id!r} is public and may not use"
                " client_credentials"
            )
        if self.access_token_format not in ACCESS_TOKEN_FORMATS:
            raise ValueError(
                f"invalid access_token_format {self.access_token_format!r} for"
                f" client {self.client_id!r}: expected jwt or opaque"
            )

    def _check_key_source(self) -> None:
        if self.secret is not None:
            raise ValueError(
                f"client {self.client_id!r} uses private_key_jwt and must not"
                " have a secret"
            )
        if (self.jwks is None) == (self.jwks_uri is None):
            raise ValueError(
                f"client {self.client_id!r} uses private_key_jwt and needs"
                " exactly one of jwks and jwks_uri"
            )
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(
                f"client {self.client_id!r}: jwks must be a JWK Set with a keys list"
            )

    @property
    def is_public(self) -> bool:
        """True when the client has no secret and authenticates with 'none'."""
        return self.auth_method == "none"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        return {
            "client_id": self.client_id,
            "redirect_uris": list(self.redirect_uris),
            "auth_method": self.auth_method,
            "secret": self.secret,
            "scope": list(self.scope),
            "name": self.name,
            "created_at": self.created_at,
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "backchannel_logout_session_required": (
                self.backchannel_logout_session_required
            ),
            "grant_types": list(self.grant_types),
            "jwks": dict(self.jwks) if self.jwks is not None else None,
            "jwks_uri": self.jwks_uri,
            "access_token_format": self.access_token_format,
            "first_party": self.first_party,
            "require_auth_time": self.require_auth_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Client:
        """Build a Client from to_dict() output; KeyError if a field is absent."""
        return cls(
            client_id=data["client_id"],
            redirect_uris=tuple(data["redirect_uris"]),
            auth_method=data["auth_method"],
            secret=data["secret"],
            scope=tuple(data["scope"]),
            name=data.get("name", ""),
            created_at=int(data.get("created_at", 0)),
            post_logout_redirect_uris=tuple(data.get("post_logout_redirect_uris", ())),
            backchannel_logout_uri=data.get("backchannel_logout_uri"),
            backchannel_logout_session_required=bool(
                data.get("backchannel_logout_session_required", False)
            ),
            grant_types=tuple(
                data.get("grant_types", ("authorization_code", "refresh_token"))
            ),
            jwks=data.get("jwks"),
            jwks_uri=data.get("jwks_uri"),
            access_token_format=data.get("access_token_format", "jwt"),
            first_party=bool(data.get("first_party", False)),
            require_auth_time=bool(data.get("require_auth_time", False)),
        )

    def to_json(self) -> str:
        """Serialize the client for storage."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Client:
        """Parse a client written by to_json()."""
        return cls.from_dict(fastjson.loads(raw))
