"""The OAuth 2.0 and OpenID Connect error tree.

    PorchlightError
     ├── OAuthError                    an `error` code a client may see
     │    ├── InvalidRequest           400 invalid_request
     │    ├── InvalidClient            401 invalid_client
     │    ├── InvalidGrant             400 invalid_grant
     │    ├── UnauthorizedClient       400 unauthorized_client
     │    ├── UnsupportedGrantType     400 unsupported_grant_type
     │    ├── InvalidScope             400 invalid_scope
     │    ├── InvalidToken             401 invalid_token (RFC 6750 3.1)
     │    ├── AccessDenied             access_denied (authorization only)
     │    ├── UnsupportedResponseType  unsupported_response_type
     │    ├── LoginRequired, ConsentRequired, InteractionRequired
     │    ├── RequestNotSupported, RequestUriNotSupported
     │    ├── ServerError              500 server_error
     │    └── TemporarilyUnavailable   503 temporarily_unavailable
     ├── UnverifiedClient              no redirect may be made: HTML error page
     └── StorageUnavailable            Redis down or contended: 503

Checks raise; the web layer renders JSON, a redirect or an HTML page.
"""

from __future__ import annotations

import re

# RFC 6749 5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class PorchlightError(Exception):
    """Base class of the errors this package raises on purpose."""


class OAuthError(PorchlightError):
    """An OAuth error with its `error` code and HTTP status."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.error)
        self.description = _UNSAFE_DESCRIPTION.sub(" ", description)[:200]

    def to_dict(self) -> dict[str, str]:
        """Return the JSON body of RFC 6749 5.2."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidToken(OAuthError):
    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class UnverifiedClient(PorchlightError):
    """The client or its redirect_uri could not be verified (RFC 6749 4.1.2.1).

    The user agent must not be redirected; the web layer shows an HTML page.
    """

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class StorageUnavailable(PorchlightError):
    """Redis could not be reached, or a write lost every compare-and-set retry."""
