"""Client authentication with a signed JWT (RFC 7523 2.2, OIDC Core 9).

private_key_jwt assertions are checked against the client's registered JWK
Set (inline `jwks`, or `jwks_uri` fetched and cached in Redis);
client_secret_jwt assertions against an HMAC key that is the client secret.
Every failure is an invalid_client, so a client learns nothing about which
check failed beyond the error description.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from cryptojwt.exception import JWKESTException
from cryptojwt.jwk.hmac import SYMKey
from cryptojwt.jwk.jwk import key_from_jwk_dict
from cryptojwt.jws.exception import JWSException
from cryptojwt.jws.jws import JWS

from ..errors import InvalidClient
from ..log import OIDC
from ..models import Client
from ..store.token_records import TokenRecords

logger = logging.getLogger(OIDC)

ASYMMETRIC_ALGS = ["RS256", "PS256", "ES256"]
SYMMETRIC_ALGS = ["HS256"]
# An assertion may expire at most this many seconds from now, which bounds how
# long its jti record lives. One hour, because Authlib 1.9 signs assertions
# valid for an hour by default. The jti makes each assertion single-use.
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 30
MAX_JTI_LENGTH = 256
JWKS_CACHE_TTL = 300
# A failed signature check fetches the JWK Set again (the client may have
# rotated keys), but at most this often, so bad assertions cannot make the
# server hammer the client's jwks_uri.
JWKS_REFETCH_INTERVAL = 30
JWKS_FETCH_TIMEOUT = 4.0
JWKS_MAX_BYTES = 64 * 1024

JwksFetcher = Callable[[str], Awaitable[dict[str, Any]]]


async def fetch_jwks(uri: str) -> dict[str, Any]:
    """Fetch a JWK Set with GET; raise InvalidClient when that fails."""
    timeout = aiohttp.ClientTimeout(total=JWKS_FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(uri, allow_redirects=False) as reply,
        ):
            body = await reply.content.read(JWKS_MAX_BYTES + 1)
            status = reply.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("fetching jwks_uri %s failed: %s", uri, type(exc).__name__)
        raise InvalidClient("the client's jwks_uri could not be fetched") from None
    if status != 200 or len(body) > JWKS_MAX_BYTES:
        logger.warning("jwks_uri %s returned status %d", uri, status)
        raise InvalidClient("the client's jwks_uri could not be fetched")
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidClient("the client's jwks_uri is not a JWK Set")
    return document


class AssertionVerifier:
    """Verifies client assertions and records their jti as used."""

    def __init__(
        self,
        records: TokenRecords,
        issuer: str,
        token_endpoint: str,
        fetch: JwksFetcher = fetch_jwks,
    ) -> None:
        self._records = records
        self._audiences = {issuer, token_endpoint}
        self._fetch = fetch

    async def verify(self, client: Client | None, assertion: str) -> Client:
        """Return the client the assertion authenticates; raise InvalidClient."""
        if client is None or client.auth_method not in (
            "private_key_jwt",
            "client_secret_jwt",
        ):
            raise InvalidClient("client authentication failed")
        claims = await self._verified_claims(client, assertion)
        expiry = _check_claims(claims, client.client_id, self._audiences)
        ttl = expiry - int(time.time()) + CLOCK_SKEW
        if not await self._records.use_jti(client.client_id, claims["jti"], ttl):
            raise InvalidClient("the client assertion was already used")
        return client

    async def _verified_claims(self, client: Client, assertion: str) -> dict[str, Any]:
        if client.auth_method == "client_secret_jwt":
            try:
                keys = [SYMKey(key=(client.secret or "").encode(), alg="HS256")]
            except JWKESTException:
                # cryptojwt refuses HMAC keys under 16 bytes.
                raise InvalidClient(
                    "the client secret is too short for HS256"
                ) from None
            return _verify_signature(assertion, keys, SYMMETRIC_ALGS)
        if client.jwks is not None:
            keys = _public_keys(dict(client.jwks))
            return _verify_signature(assertion, keys, ASYMMETRIC_ALGS)
        return await self._verify_with_jwks_uri(client, assertion)

    async def _verify_with_jwks_uri(
        self, client: Client, assertion: str
    ) -> dict[str, Any]:
        uri = client.jwks_uri or ""
        cached = await self._records.cached_jwks(client.client_id)
        if cached is not None:
            jwks, fetched_at = cached
            try:
                return _verify_signature(assertion, _public_keys(jwks), ASYMMETRIC_ALGS)
            except InvalidClient:
                if time.time() - fetched_at < JWKS_REFETCH_INTERVAL:
                    raise
                # The client may have rotated its keys, so fetch them again.
        fresh = await self._fetch(uri)
        await self._records.cache_jwks(client.client_id, fresh, JWKS_CACHE_TTL)
        return _verify_signature(assertion, _public_keys(fresh), ASYMMETRIC_ALGS)


def _public_keys(jwks: dict[str, Any]) -> list[Any]:
    keys = []
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys.append(key_from_jwk_dict(entry, private=False))
        except (JWKESTException, ValueError, KeyError, TypeError):
            logger.warning("skipping an unusable key in a client JWK Set")
    return keys


def _verify_signature(
    assertion: str, keys: list[Any], algorithms: list[str]
) -> dict[str, Any]:
    try:
        verified = JWS(alg=algorithms).verify_compact(assertion, keys)
    except (JWKESTException, JWSException, ValueError, KeyError, TypeError):
        raise InvalidClient("the client assertion signature is invalid") from None
    if not isinstance(verified, dict):
        raise InvalidClient("the client assertion payload is not a JSON object")
    return verified


def _check_claims(claims: dict[str, Any], client_id: str, audiences: set[str]) -> int:
    """Check iss, sub, aud, exp, nbf and jti (RFC 7523 3); return exp."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("the client assertion iss and sub must be the client_id")
    audience = claims.get("aud")
    audience_list = [audience] if isinstance(audience, str) else audience
    if not isinstance(audience_list, list) or not audiences.intersection(audience_list):
        raise InvalidClient("the client assertion audience is not this server")

    now = int(time.time())
    expiry = claims.get("exp")
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        raise InvalidClient("the client assertion has no exp")
    if expiry + CLOCK_SKEW <= now:
        raise InvalidClient("the client assertion has expired")
    if expiry > now + MAX_ASSERTION_LIFETIME:
        raise InvalidClient(
            f"the client assertion expires more than {MAX_ASSERTION_LIFETIME} s ahead"
        )
    not_before = claims.get("nbf")
    if isinstance(not_before, int) and not_before > now + CLOCK_SKEW:
        raise InvalidClient("the client assertion is not valid yet")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidClient("the client assertion has no usable jti")
    return expiry
