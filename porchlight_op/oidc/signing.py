"""Compact JWS signing and verification with the OP's keys, without per-call setup.

cryptojwt's `JWT.pack` looks the signing key up in the KeyJar and builds a
header object on every call. Here the key is picked once and reused until the
keyring follower (oidc/keyring.py) installs new key issuers, which it does by
replacing the KeyJar entries: the cached key is tied to those objects.
The key choice is cryptojwt's own (`pick_key` over the issuer's keys, then
the keys of owner ""), so tokens are signed with the key `JWT.pack` would use.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptojwt import KeyJar
from cryptojwt.exception import BadSignature
from cryptojwt.jwk.asym import AsymmetricKey
from cryptojwt.jws.exception import NoSuitableSigningKeys
from cryptojwt.jws.jws import SIGNER_ALGS
from cryptojwt.jwt import pick_key
from cryptojwt.key_jar import IssuerNotFound

from .. import fastjson


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class JwsSigner:
    """Signs JSON payloads as compact JWS with one algorithm."""

    def __init__(self, keyjar: KeyJar, issuer: str, alg: str) -> None:
        self._keyjar = keyjar
        self._issuer = issuer
        self._alg = alg
        self._signer = SIGNER_ALGS[alg]
        self._owners: tuple[Any, Any] = (None, None)
        self._key: AsymmetricKey | None = None

    def sign(self, payload: dict[str, Any], typ: str | None = None) -> str:
        """Return the compact JWS of `payload`, with `typ` in the header if given."""
        key = self._current_key()
        header: dict[str, str] = {"alg": self._alg, "kid": key.kid}
        if typ is not None:
            header["typ"] = typ
        signing_input = (
            _b64(fastjson.dumps(header)) + "." + _b64(fastjson.dumps(payload))
        )
        signature: bytes = self._signer.sign(signing_input.encode(), key.private_key())
        return signing_input + "." + _b64(signature)

    def _current_key(self) -> AsymmetricKey:
        owners = (self._owner(self._issuer), self._owner(""))
        if (
            self._key is None
            or owners[0] is not self._owners[0]
            or (owners[1] is not self._owners[1])
        ):
            self._key = self._pick()
            self._owners = owners
        return self._key

    def _owner(self, name: str) -> Any:
        try:
            return self._keyjar[name]
        except IssuerNotFound:
            return None

    def _pick(self) -> AsymmetricKey:
        # The same list and order as cryptojwt's JWT.my_keys and pack_key.
        keys = list(self._keyjar.get("sig", issuer_id=self._issuer))
        keys += self._keyjar.get("sig", issuer_id="")
        for key in pick_key(keys, "sig", alg=self._alg):
            if isinstance(key, AsymmetricKey) and key.has_private_key():
                return key
        raise NoSuitableSigningKeys(
            f"no current private key for {self._alg}; check the keyring's keys"
        )


# Verified tokens remembered per worker: about 1 KB each.
VERIFIED_CACHE_SIZE = 4096


class CannotVerify(Exception):
    """The token names an algorithm or key that the verifier does not hold."""


class JwsVerifier:
    """Verifies compact JWS that the OP signed itself with one algorithm.

    Keys are looked up by kid among the issuer's published keys (current,
    next and retired), cached until the keyring follower replaces them.
    """

    def __init__(self, keyjar: KeyJar, issuer: str, alg: str) -> None:
        self._keyjar = keyjar
        self._issuer = issuer
        self._alg = alg
        self._signer = SIGNER_ALGS[alg]
        self._owner_seen: Any = None
        self._keys: dict[str, AsymmetricKey] = {}
        # Payloads of verified tokens, keyed by the whole token. A relying party
        # sends the same access token until it expires, so this skips repeated
        # signature checks. Callers still check expiry and the grant in Redis.
        self._verified: dict[str, dict[str, Any]] = {}

    def payload(self, token: str) -> dict[str, Any] | None:
        """Return the verified payload, or None for a malformed or forged token.

        Raises CannotVerify when the header names another algorithm or a key
        this verifier does not hold, so the caller can ask cryptojwt instead.
        """
        if self._owner(self._issuer) is self._owner_seen:
            known = self._verified.get(token)
            if known is not None:
                return dict(known)
        payload = self._check(token)
        if payload is not None:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                # Drop the oldest entry; dicts keep insertion order.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = payload
            return dict(payload)
        return None

    def _check(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header = _json_part(parts[0])
        if header is None:
            return None
        key = self._key(header.get("kid")) if header.get("alg") == self._alg else None
        if key is None:
            raise CannotVerify(str(header.get("alg")))
        try:
            signature = _b64decode(parts[2])
            self._signer.verify(
                (parts[0] + "." + parts[1]).encode(), signature, key.public_key()
            )
        except (BadSignature, ValueError, TypeError):
            return None
        return _json_part(parts[1])

    def _key(self, kid: Any) -> AsymmetricKey | None:
        if not isinstance(kid, str) or not kid:
            return None
        owner = self._owner(self._issuer)
        if owner is not self._owner_seen:
            self._keys = {}
            self._verified = {}
            self._owner_seen = owner
        key = self._keys.get(kid)
        if key is None:
            for candidate in self._keyjar.get("sig", issuer_id=self._issuer, kid=kid):
                if isinstance(candidate, AsymmetricKey) and pick_key(
                    [candidate], "sig", alg=self._alg
                ):
                    key = candidate
                    self._keys[kid] = key
                    break
        return key

    def _owner(self, name: str) -> Any:
        try:
            return self._keyjar[name]
        except IssuerNotFound:
            return None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_part(part: str) -> dict[str, Any] | None:
    try:
        value = fastjson.loads(_b64decode(part))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
