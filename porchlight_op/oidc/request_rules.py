"""The checks of an authorization request, one function per rule.

`RULES` runs in order once the client and redirect_uri are verified; each rule
raises an OAuthError, which is sent to the client's redirect_uri.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .. import errors
from ..models import Client

# RFC 7636 4.1: 43 to 128 characters from the unreserved set.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# Seconds, ASCII digits only; ten digits exceed any sensible age.
MAX_AGE = re.compile(r"[0-9]{1,10}")
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
UNSUPPORTED_PARAMETERS: dict[str, type[errors.OAuthError]] = {
    "request": errors.RequestNotSupported,
    "request_uri": errors.RequestUriNotSupported,
    "registration": errors.RegistrationNotSupported,
}

Rule = Callable[[Client, Mapping[str, str]], None]

# Upper bounds on values a request echoes or keeps: the request waits in Redis
# while the user logs in, so an unbounded nonce or state would let anyone
# store kilobytes per anonymous request. The limits are far above real use.
MAX_VALUE_LENGTH = {
    "state": 2048,
    "nonce": 512,
    "login_hint": 512,
    "ui_locales": 256,
    "acr_values": 512,
    "scope": 1024,
    "id_token_hint": 8192,
}


def reject_unsupported_parameters(client: Client, params: Mapping[str, str]) -> None:
    """Reject request objects and registration (OIDC Core 6, 7.2.1)."""
    for name, error in UNSUPPORTED_PARAMETERS.items():
        if name in params:
            raise error(f"the {name} parameter is not supported")


def check_value_lengths(client: Client, params: Mapping[str, str]) -> None:
    """Reject oversized values (RFC 6749 4.1.2.1: an invalid parameter value)."""
    for name, limit in MAX_VALUE_LENGTH.items():
        if len(params.get(name, "")) > limit:
            raise errors.InvalidRequest(f"{name} is longer than {limit} characters")


def check_response_type(client: Client, params: Mapping[str, str]) -> None:
    """Accept only the authorization code flow (OIDC Core 3.1.2.1)."""
    response_type = params.get("response_type")
    if not response_type:
        raise errors.InvalidRequest("response_type is missing")
    if response_type != "code":
        raise errors.UnsupportedResponseType("only response_type=code is supported")


def check_response_mode(client: Client, params: Mapping[str, str]) -> None:
    """Accept only query responses (OAuth 2.0 Multiple Response Types 2.1)."""
    if params.get("response_mode", "query") != "query":
        raise errors.InvalidRequest("only response_mode=query is supported")


def check_openid_scope(client: Client, params: Mapping[str, str]) -> None:
    """Require the openid scope, and a client allowed it (OIDC Core 3.1.2.1)."""
    if "openid" not in params.get("scope", "").split():
        raise errors.InvalidScope("the openid scope is required")
    if "openid" not in client.scope:
        raise errors.InvalidScope("the client may not request openid")


def check_pkce(client: Client, params: Mapping[str, str]) -> None:
    """Accept only S256 challenges, required of public clients (RFC 9700 2.1.1)."""
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if client.is_public:
            raise errors.InvalidRequest("public clients must use PKCE (S256)")
        if method is not None:
            raise errors.InvalidRequest("code_challenge_method without code_challenge")
    elif method != "S256":
        raise errors.InvalidRequest("code_challenge_method must be S256")
    elif not CODE_VERIFIER.fullmatch(challenge) or len(challenge) != 43:
        raise errors.InvalidRequest("code_challenge is not a S256 challenge")


def check_max_age(client: Client, params: Mapping[str, str]) -> None:
    """Require max_age to be a whole number of seconds (OIDC Core 3.1.2.1)."""
    if "max_age" in params and not MAX_AGE.fullmatch(params["max_age"]):
        raise errors.InvalidRequest("max_age must be a non-negative integer")


def check_prompt_values(client: Client, params: Mapping[str, str]) -> None:
    """Reject unknown prompt values (OIDC Core 3.1.2.1)."""
    unknown = set(params.get("prompt", "").split()) - PROMPT_VALUES
    if unknown:
        raise errors.InvalidRequest(f"unknown prompt value {sorted(unknown)[0]!r}")


def check_prompt_none_alone(client: Client, params: Mapping[str, str]) -> None:
    """Reject prompt=none combined with another value (OIDC Core 3.1.2.1)."""
    prompt = params.get("prompt", "").split()
    if "none" in prompt and len(prompt) > 1:
        raise errors.InvalidRequest("prompt=none cannot be combined with other values")


RULES: tuple[Rule, ...] = (
    check_value_lengths,
    reject_unsupported_parameters,
    check_response_type,
    check_response_mode,
    check_openid_scope,
    check_pkce,
    check_max_age,
    check_prompt_values,
    check_prompt_none_alone,
)
