"""Client rules: redirect URI matching, client authentication, idpyoidc's view.

Porchlight checks these itself rather than leaving them to idpyoidc, which
compares secrets with `==`, does not form-decode HTTP Basic credentials and
does not know the loopback redirect rule of native apps.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..errors import InvalidClient, InvalidRequest
from ..models import Client

LOOPBACK_HOSTS = ("127.0.0.1", "::1")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Compare redirect URIs exactly (RFC 9700 2.1), or per RFC 8252 7.3.

    A registered `http` URI on a loopback IP literal matches the same URI on
    any port, because native apps bind an ephemeral port at run time.
    """
    if hmac.compare_digest(registered.encode(), requested.encode()):
        return True
    wanted, given = urlsplit(registered), urlsplit(requested)
    if wanted.scheme != "http" or given.scheme != "http":
        return False
    if wanted.hostname not in LOOPBACK_HOSTS or given.hostname != wanted.hostname:
        return False
    if not _valid_port(given.netloc) or given.username or given.password:
        return False
    return (
        given.path == wanted.path
        and given.query == wanted.query
        and not given.fragment
        and given.netloc.startswith(_host_part(wanted.netloc))
    )


def _valid_port(netloc: str) -> bool:
    """True when the authority has no port or a decimal port in range."""
    try:
        port = urlsplit(f"http://{netloc}").port
    except ValueError:
        return False
    return port is None or port > 0


def _host_part(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.split(":", 1)[0]


def registered_redirect_uri(client: Client, requested: str) -> bool:
    """Tell whether `requested` is one of the client's redirect URIs."""
    return any(redirect_uri_matches(uri, requested) for uri in client.redirect_uris)


@dataclass(frozen=True)
class ClientCredentials:
    """Credentials a token request presented to identify its client."""

    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none
    # The Basic secret as sent, when form-decoding changed it: many clients
    # (Authlib 1.9 among them) skip the encoding RFC 6749 2.3.1 requires.
    undecoded_secret: str | None = None
    # A signed client assertion (RFC 7523 2.2); `authenticate` rejects it,
    # because only client_assertions.AssertionVerifier may accept one.
    assertion: str | None = None


def read_credentials(
    form: Mapping[str, str], authorization: str | None
) -> ClientCredentials:
    """Extract client credentials from a token request (RFC 6749 2.3.1).

    Using more than one method in one request is an invalid_request.
    """
    if "client_assertion" in form or "client_assertion_type" in form:
        return _assertion_credentials(form, authorization)
    in_body = "client_secret" in form
    if authorization is not None and authorization[:6].lower() == "basic ":
        if in_body:
            raise InvalidRequest("client credentials sent in more than one way")
        client_id, secret, raw_secret = _basic(authorization[6:])
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id does not match the Authorization header")
        undecoded = raw_secret if raw_secret != secret else None
        return ClientCredentials(client_id, secret, "client_secret_basic", undecoded)

    body_client_id = form.get("client_id")
    if not body_client_id:
        raise InvalidClient("client authentication is missing")
    if in_body:
        return ClientCredentials(
            body_client_id, form["client_secret"], "client_secret_post"
        )
    return ClientCredentials(body_client_id, None, "none")


def _assertion_credentials(
    form: Mapping[str, str], authorization: str | None
) -> ClientCredentials:
    """Read a JWT client assertion; its signature is checked later (RFC 7523 2.2)."""
    if authorization is not None or "client_secret" in form:
        raise InvalidRequest("client credentials sent in more than one way")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion", "")
    client_id = _unverified_issuer(assertion)
    if form.get("client_id", client_id) != client_id:
        raise InvalidClient("client_id does not match the client assertion")
    return ClientCredentials(client_id, None, "client_assertion", assertion=assertion)


def _unverified_issuer(assertion: str) -> str:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise InvalidClient("the client assertion is not a signed JWT")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        raise InvalidClient("the client assertion is not a signed JWT") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise InvalidClient("the client assertion has no iss")
    return issuer


def _basic(encoded: str) -> tuple[str, str, str]:
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        # ValueError covers non-ASCII input and UnicodeDecodeError alike.
        raise InvalidClient("malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClient("malformed HTTP Basic credentials")
    # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret), secret


@functools.lru_cache(maxsize=512)
def parsed_client(record: bytes) -> Client:
    """Parse a stored client record, reusing the result for identical bytes.

    Client is immutable, and a changed registration is a different record,
    so the token endpoint skips the JSON work for clients it saw before.
    """
    return Client.from_json(record)


def authenticate(client: Client | None, credentials: ClientCredentials) -> Client:
    """Check the credentials against the client's registration, in constant time."""
    if client is None:
        raise InvalidClient("client authentication failed")
    if credentials.method != client.auth_method:
        raise InvalidClient("client authentication failed")
    if client.is_public:
        return client
    expected = (client.secret or "").encode()
    presented = (credentials.secret or "").encode()
    undecoded = (credentials.undecoded_secret or "").encode()
    # Both comparisons always run, so timing does not tell which one matched.
    matches = hmac.compare_digest(expected, presented)
    matches_undecoded = hmac.compare_digest(expected, undecoded)
    if not expected or not (matches or matches_undecoded):
        raise InvalidClient("client authentication failed")
    return client


def cdb_entry(client: Client, redirect_uri: str | None = None) -> dict[str, Any]:
    """Return the client as idpyoidc's client database expects it, as a fresh copy.

    idpyoidc writes into cdb entries, so each request gets its own. The
    requested redirect URI, already checked, is listed as given so that
    idpyoidc's own check agrees with ours (the loopback port rule).
    """
    uris = list(client.redirect_uris)
    if redirect_uri is not None and redirect_uri not in uris:
        uris.append(redirect_uri)
    return {
        "client_id": client.client_id,
        "redirect_uris": [(uri, {}) for uri in uris],
        "response_types_supported": ["code"],
        "token_endpoint_auth_method": client.auth_method,
        "allowed_scopes": list(client.scope),
        "scope": list(client.scope),
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "pkce_essential": client.is_public,
        "client_name": client.name or client.client_id,
        "id_token_signed_response_alg": "RS256",
        "require_auth_time": client.require_auth_time,
        "access_token_format": client.access_token_format,
    }
