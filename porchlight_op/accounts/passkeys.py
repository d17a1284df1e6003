"""WebAuthn registration and authentication ceremonies, verified by py_webauthn.

The relying party id is the issuer's host and the expected origin is the
issuer's scheme, host and port. Each ceremony's challenge is stored in Redis
for a few minutes and taken once (store/passkeys.py CeremonyStore).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from porchlight_op.log import ACCOUNTS
from porchlight_op.store.connection import RedisClient
from porchlight_op.store.passkeys import (
    Ceremony,
    CeremonyStore,
    ConcurrentUpdate,
    Passkey,
    PasskeyStore,
    SignCountNotIncreased,
    b64url,
    b64url_decode,
    counter_acceptable,
)

logger = logging.getLogger(ACCOUNTS)

LOGIN = "login"
ADD = "add"  # a signed-in user adds a passkey
ENROL = "enrol"  # an invitee creates an account with a passkey
# Milliseconds the browser may wait for the user; shorter than the challenge TTL.
CEREMONY_TIMEOUT_MS = 120_000
MAX_NAME_LENGTH = 64
KNOWN_TRANSPORTS = frozenset(item.value for item in AuthenticatorTransport)
DEFAULT_PORTS = {"http": 80, "https": 443}

EXPIRED = "The passkey request has expired. Try again."
UNKNOWN_PASSKEY = "This passkey is not registered here."
NOT_VERIFIED = "The passkey response could not be verified."
POSSIBLE_CLONE = "This passkey was refused because its use counter went backwards."
ALREADY_REGISTERED = "This passkey is registered already."


class PasskeyRejected(Exception):
    """A failed ceremony; str() is the message for the user, reason is for logs."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RelyingPartyIdentity:
    """The WebAuthn relying party: its id (a host name) and origin."""

    id: str
    origin: str
    name: str = "Porchlight"

    @classmethod
    def from_issuer(cls, issuer: str) -> RelyingPartyIdentity:
        """Derive the rp id and origin from the issuer URL.

        The origin is serialized as browsers put it in clientDataJSON (HTML
        origin serialization): lowercase host, IPv6 in brackets, and no port
        when it is the scheme's default.
        """
        parts = urlsplit(issuer)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
        netloc = f"[{host}]" if ":" in host else host
        if port is not None and DEFAULT_PORTS.get(scheme) != port:
            netloc = f"{netloc}:{port}"
        return cls(id=host, origin=f"{scheme}://{netloc}")


@dataclass(frozen=True)
class Assertion:
    """A verified passkey login: who signed in and whether the user was verified."""

    sub: str
    user_verified: bool
    passkey: Passkey


class PasskeyCeremonies:
    """Creates ceremony options and verifies the browser's responses."""

    def __init__(self, redis: RedisClient, issuer: str) -> None:
        self.store = PasskeyStore(redis)
        self.ceremonies = CeremonyStore(redis)
        self.rp = RelyingPartyIdentity.from_issuer(issuer)

    async def login_options(self) -> tuple[str, dict[str, Any]]:
        """Start a usernameless login; return the ceremony id and browser options."""
        options = generate_authentication_options(
            rp_id=self.rp.id,
            timeout=CEREMONY_TIMEOUT_MS,
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        ceremony = Ceremony(LOGIN, b64url(options.challenge))
        ceremony_id = await self.ceremonies.put(ceremony)
        return ceremony_id, json.loads(options_to_json(options))

    async def registration_options(
        self, purpose: str, sub: str, username: str, data: dict[str, str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a registration for this sub; its passkeys are excluded."""
        existing = await self.store.list(sub)
        options = generate_registration_options(
            rp_id=self.rp.id,
            rp_name=self.rp.name,
            user_name=username,
            user_id=sub.encode(),
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=b64url_decode(item.credential_id))
                for item in existing
            ],
        )
        ceremony = Ceremony(purpose, b64url(options.challenge), sub, data or {})
        ceremony_id = await self.ceremonies.put(ceremony)
        return ceremony_id, json.loads(options_to_json(options))

    async def take(self, ceremony_id: str, purpose: str) -> Ceremony:
        """Take a stored ceremony of this purpose, or raise PasskeyRejected."""
        ceremony = await self.ceremonies.take(ceremony_id)
        if ceremony is None or ceremony.purpose != purpose:
            raise PasskeyRejected(EXPIRED, "unknown or expired ceremony")
        return ceremony

    def verify_registration(
        self, ceremony: Ceremony, credential: dict[str, Any], name: str
    ) -> Passkey:
        """Verify a create() response against the ceremony; return the new passkey."""
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=b64url_decode(ceremony.challenge),
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            raise PasskeyRejected(NOT_VERIFIED, str(error)[:200]) from error
        return Passkey(
            credential_id=b64url(verified.credential_id),
            public_key=b64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            name=clean_name(name) or default_name(),
            created_at=int(time.time()),
            transports=_transports(credential),
            aaguid=str(verified.aaguid),
            backup_eligible=(
                verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
            ),
            backed_up=verified.credential_backed_up,
        )

    async def verify_login(
        self, ceremony: Ceremony, credential: dict[str, Any]
    ) -> Assertion:
        """Verify a get() response; store the new counter; return who signed in."""
        raw_id = _credential_id(credential)
        found = await self.store.find(raw_id)
        if found is None:
            raise PasskeyRejected(UNKNOWN_PASSKEY, "unknown credential id")
        sub, passkey = found
        try:
            # The counter is checked below, after the signature, so a clone
            # warning is logged only for a genuine assertion.
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=b64url_decode(ceremony.challenge),
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
                credential_public_key=b64url_decode(passkey.public_key),
                credential_current_sign_count=0,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            raise PasskeyRejected(NOT_VERIFIED, str(error)[:200]) from error
        _check_user_handle(credential, sub)
        updated = await self._count_use(sub, passkey, verified.new_sign_count)
        return Assertion(sub, verified.user_verified, updated)

    async def _count_use(self, sub: str, passkey: Passkey, sign_count: int) -> Passkey:
        try:
            if not counter_acceptable(passkey.sign_count, sign_count):
                raise SignCountNotIncreased(passkey.sign_count, sign_count)
            updated = await self.store.update_after_use(
                sub, passkey.credential_id, sign_count
            )
        except SignCountNotIncreased as error:
            logger.warning(
                "passkey rejected, possible cloned authenticator: sub=%s"
                " stored_count=%d presented_count=%d",
                sub,
                error.stored,
                error.presented,
            )
            raise PasskeyRejected(POSSIBLE_CLONE, "sign count not increased") from None
        except ConcurrentUpdate:
            raise PasskeyRejected(
                NOT_VERIFIED, "passkey record kept changing"
            ) from None
        if updated is None:
            raise PasskeyRejected(UNKNOWN_PASSKEY, "passkey removed during login")
        return updated


def clean_name(name: str) -> str:
    """Return a passkey name with surrounding space removed, cut to the limit."""
    return " ".join(name.split())[:MAX_NAME_LENGTH]


def default_name() -> str:
    """Return the name of a passkey that the user did not name."""
    return time.strftime("Passkey of %Y-%m-%d", time.gmtime())


def _credential_id(credential: dict[str, Any]) -> bytes:
    raw = credential.get("rawId", credential.get("id"))
    if not isinstance(raw, str) or not raw:
        raise PasskeyRejected(NOT_VERIFIED, "credential without an id")
    try:
        return b64url_decode(raw)
    except ValueError:
        raise PasskeyRejected(NOT_VERIFIED, "credential id not base64url") from None


def _check_user_handle(credential: dict[str, Any], sub: str) -> None:
    """Reject an assertion whose user handle names another user than the owner."""
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if not handle:
        return
    try:
        matches = b64url_decode(str(handle)) == sub.encode()
    except ValueError:
        matches = False
    if not matches:
        raise PasskeyRejected(NOT_VERIFIED, "user handle does not match the owner")


def _transports(credential: dict[str, Any]) -> tuple[str, ...]:
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    if not isinstance(listed, list):
        return ()
    # The list comes from the browser unchecked, so it may hold any JSON value.
    return tuple(
        item for item in listed if isinstance(item, str) and item in KNOWN_TRANSPORTS
    )
