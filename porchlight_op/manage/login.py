"""Log in to the management area through the OP, as an external RP would.

The area sends the browser to /authorization (code flow, PKCE S256, state and
nonce), redeems the code at the token endpoint over HTTP with
client_secret_basic, and checks the ID token against the OP's published JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any, NoReturn
from urllib.parse import quote_plus, urlencode

import aiohttp
from aiohttp import web
from aiohttp_session import get_session
from cryptojwt.jwk.jwk import key_from_jwk_dict
from cryptojwt.jws.jws import JWS

from ..log import WEB
from ..web.keys import SETTINGS
from ..web.login_session import MANAGE_FLOW_FIELD, current_login
from .client import MANAGEMENT_CLIENT, SCOPE, ManagementClient

logger = logging.getLogger(WEB)

# Session keys: the login in progress and the finished management login.
FLOW_FIELD = MANAGE_FLOW_FIELD
LOGIN_FIELD = "manage_login"
HOME_PATH = "/manage/credentials"
HTTP_TIMEOUT = 10.0  # seconds, for each call to the token and JWKS endpoints
# Base URL of the token and JWKS endpoints that the area calls. Production leaves
# it unset, so the issuer is used. Tests set it to a server with hostile tokens.
ENDPOINT_BASE: web.AppKey[str] = web.AppKey("manage_endpoint_base")


class ManageLoginError(Exception):
    """A failed management login, with the message shown to the user as str()."""


async def management_sub(request: web.Request) -> str | None:
    """Return the sub of the live management login, or None.

    The management login also ends when the browser's OP login ends or
    changes to another user.
    """
    session = await get_session(request)
    stored = session.get(LOGIN_FIELD)
    if not isinstance(stored, dict):
        return None
    sub = stored.get("sub")
    expires_at = stored.get("exp")
    if not isinstance(sub, str) or not isinstance(expires_at, int):
        return None
    login = await current_login(request)
    if time.time() >= expires_at or login is None or login.sub != sub:
        # current_login may have cleared the whole session already.
        session.pop(LOGIN_FIELD, None)
        return None
    return sub


async def start(request: web.Request, next_path: str) -> NoReturn:
    """Redirect to the OP's authorization endpoint, keeping state in the session."""
    client = request.app[MANAGEMENT_CLIENT]
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    session = await get_session(request)
    session[FLOW_FIELD] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_path,
    }
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "scope": " ".join(SCOPE),
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    raise web.HTTPFound(f"/authorization?{query}")


async def finish(request: web.Request) -> str:
    """Check the callback, redeem its code and store the login; return next path.

    Raises ManageLoginError with a message for the user on any failure.
    """
    session = await get_session(request)
    flow = session.pop(FLOW_FIELD, None)
    if not isinstance(flow, dict):
        raise ManageLoginError("No sign-in to the management area was in progress.")
    state = request.query.get("state", "")
    if not hmac.compare_digest(state.encode(), str(flow["state"]).encode()):
        logger.info("management callback rejected: state mismatch")
        raise ManageLoginError("The sign-in response does not match this browser.")
    if "error" in request.query:
        # %r keeps a forged newline in the parameter from starting a log line.
        logger.info("management login ended: error=%r", request.query["error"][:64])
        raise ManageLoginError("The sign-in to the management area was not completed.")
    code = request.query.get("code")
    if not code:
        raise ManageLoginError("The sign-in response has no authorization code.")
    client = request.app[MANAGEMENT_CLIENT]
    issuer = request.app[SETTINGS].issuer
    endpoint_base = request.app.get(ENDPOINT_BASE, issuer)
    claims = await _redeem(endpoint_base, client, code, str(flow["verifier"]))
    _check_claims(claims, issuer, client.client_id, str(flow["nonce"]))
    session[LOGIN_FIELD] = {"sub": claims["sub"], "exp": int(claims["exp"])}
    next_path = flow.get("next")
    return next_path if isinstance(next_path, str) else HOME_PATH


async def _redeem(
    endpoint_base: str, client: ManagementClient, code: str, verifier: str
) -> dict[str, Any]:
    """Redeem the code at the token endpoint; return the verified ID token claims."""
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    # RFC 6749 2.3.1: form-encode the id and secret before Basic encoding.
    auth = aiohttp.encode_basic_auth(
        quote_plus(client.client_id), quote_plus(client.secret)
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(
                f"{endpoint_base}/token", data=form, headers={"Authorization": auth}
            ) as reply:
                tokens = await reply.json(content_type=None)
                status = reply.status
            async with http.get(f"{endpoint_base}/jwks") as reply:
                jwks = await reply.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        logger.warning("management token request failed: %s", type(error).__name__)
        raise ManageLoginError("The sign-in could not be completed.") from error
    if status != 200 or not isinstance(tokens, dict) or "id_token" not in tokens:
        error_code = tokens.get("error") if isinstance(tokens, dict) else None
        logger.warning("management code redemption failed: error=%s", error_code)
        raise ManageLoginError("The sign-in could not be completed.")
    return _verify_signature(str(tokens["id_token"]), jwks)


def _verify_signature(id_token: str, jwks: Any) -> dict[str, Any]:
    try:
        keys = [key_from_jwk_dict(item) for item in jwks["keys"]]
        claims = JWS().verify_compact(id_token, keys=keys)
    except Exception as error:  # cryptojwt raises many unrelated classes
        logger.warning("management ID token rejected: %s", type(error).__name__)
        raise ManageLoginError("The ID token could not be verified.") from error
    if not isinstance(claims, dict):
        raise ManageLoginError("The ID token could not be verified.")
    return claims


def _check_claims(
    claims: dict[str, Any], issuer: str, client_id: str, nonce: str
) -> None:
    audience = claims.get("aud")
    # OIDC Core 3.1.3.7 rule 3: reject audiences the client does not trust, and
    # this client trusts no audience but itself.
    audiences = audience if isinstance(audience, list) else [audience]
    expires_at = claims.get("exp")
    problems = [
        ("iss", claims.get("iss") != issuer),
        ("aud", audiences != [client_id]),
        ("nonce", claims.get("nonce") != nonce),
        ("exp", not isinstance(expires_at, int) or expires_at <= time.time()),
        ("sub", not isinstance(claims.get("sub"), str)),
    ]
    for name, failed in problems:
        if failed:
            logger.warning("management ID token rejected: invalid %s", name)
            raise ManageLoginError("The ID token is not valid for this sign-in.")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
