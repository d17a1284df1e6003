"""Token endpoint: client authentication, code and refresh grant failures.

Every reply, success or failure, must carry `Cache-Control: no-store`
(RFC 6749 5.1) and must not leak a traceback, an exception name or a secret.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from support import REDIRECT_URI, basic_auth, pkce_pair, query_of

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
# Every character that RFC 6749 2.3.1 form-encoding changes, and a space.
AWKWARD_SECRET = "a/b=c?d+e:f%g h"
FORM_TYPE = "application/x-www-form-urlencoded"
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")


@dataclass
class Code:
    """An authorization code and the PKCE verifier that goes with it."""

    value: str
    verifier: str | None


@dataclass
class Reply:
    """A token endpoint reply, read in full."""

    status_code: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def send(
    method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> Reply:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=body, headers=headers) as response,
    ):
        return Reply(response.status, response.headers, await response.text())


def check_reply(reply: Reply, *secrets: str) -> None:
    """Check what every token reply must have and must not contain."""
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in reply.text
    assert EXCEPTION_NAME.search(reply.text) is None
    for secret in (SECRET, AWKWARD_SECRET, *secrets):
        assert secret not in reply.text


async def post_token(
    op, data: dict[str, str], auth: tuple[str, str] | None = None, **headers: str
) -> Reply:
    """POST a form to /token, with RFC 6749 2.3.1 Basic credentials if given."""
    if auth is not None:
        headers["Authorization"] = basic_auth(*auth)
    body = urlencode(data).encode()
    return await post_raw(op, body, FORM_TYPE, *(auth[1:] if auth else ()), **headers)


async def post_raw(
    op, body: bytes, content_type: str, *secrets: str, **headers: str
) -> Reply:
    """POST a body as given to /token and check what every reply must satisfy."""
    headers["Content-Type"] = content_type
    reply = await send("POST", op.url + "/token", body, headers)
    check_reply(reply, *secrets)
    return reply


def error_of(reply: Reply, status: int = 400) -> str:
    assert reply.status_code == status
    error: str = reply.json()["error"]
    return error


async def obtain_code(op, browser, client, pkce: bool = True) -> Code:
    """Log alice in through the browser and return the code sent to the client."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": "state-1",
    }
    if pkce:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    url = op.url + "/authorization?" + urlencode(params)
    reply = await browser.authorize(url, "alice", PASSWORD)
    assert reply.status == 302
    return Code(query_of(reply.headers["Location"])["code"], verifier if pkce else None)


def code_form(code: Code, **changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code.value,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": code.verifier,
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


async def redeem(op, client, code: Code, **changes: str | None) -> Reply:
    """Redeem a code as `client`, authenticating as registered."""
    form = code_form(code, **changes)
    if client.auth_method == "client_secret_basic":
        return await post_token(op, form, auth=(client.client_id, client.secret))
    form["client_id"] = client.client_id
    if client.auth_method == "client_secret_post":
        form["client_secret"] = client.secret
    return await post_token(op, form)


async def refresh(op, client, refresh_token: str) -> Reply:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await post_token(op, form, auth=(client.client_id, client.secret))


async def userinfo_status(op, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    reply = await send("GET", op.url + "/userinfo", None, headers)
    return reply.status_code


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
async def rp(op, alice):
    return await op.add_client("rp", secret=SECRET)


@pytest.fixture
async def code(op, browser, rp) -> Code:
    return await obtain_code(op, browser, rp)


# -- client authentication (RFC 6749 2.3.1) --


async def test_basic_secret_is_form_decoded(op, browser, alice):
    client = await op.add_client("awkward", secret=AWKWARD_SECRET)
    code = await obtain_code(op, browser, client)

    reply = await redeem(op, client, code)

    assert reply.status_code == 200
    assert "access_token" in reply.json()


async def test_basic_secret_without_form_encoding_accepted(op, browser, alice):
    # Many clients, Authlib 1.9 among them, skip the RFC 6749 2.3.1 encoding.
    client = await op.add_client("awkward", secret=AWKWARD_SECRET)
    code = await obtain_code(op, browser, client)
    raw = base64.b64encode(f"awkward:{AWKWARD_SECRET}".encode()).decode()

    reply = await post_token(op, code_form(code), Authorization=f"Basic {raw}")

    assert reply.status_code == 200


async def test_post_secret_with_awkward_characters(op, browser, alice):
    client = await op.add_client(
        "awkward", auth_method="client_secret_post", secret=AWKWARD_SECRET
    )
    code = await obtain_code(op, browser, client)

    reply = await redeem(op, client, code)

    assert reply.status_code == 200
    assert "id_token" in reply.json()


async def test_wrong_basic_secret_rejected(op, rp, code):
    reply = await post_token(op, code_form(code), auth=("rp", "wrong-secret"))

    assert error_of(reply, 401) == "invalid_client"
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


async def test_wrong_post_secret_rejected(op, browser, alice):
    client = await op.add_client("poster", auth_method="client_secret_post")
    code = await obtain_code(op, browser, client)
    form = code_form(code, client_id="poster", client_secret="wrong-secret")

    reply = await post_token(op, form)

    assert error_of(reply, 401) == "invalid_client"


async def test_unknown_client_rejected(op, code):
    reply = await post_token(op, code_form(code), auth=("nobody", SECRET))

    assert error_of(reply, 401) == "invalid_client"


async def test_unknown_client_in_body_rejected(op, code):
    form = code_form(code, client_id="nobody", client_secret=SECRET)

    reply = await post_token(op, form)

    assert error_of(reply, 401) == "invalid_client"


async def test_no_client_authentication_rejected(op, code):
    reply = await post_token(op, code_form(code))

    assert error_of(reply, 401) == "invalid_client"


async def test_credentials_in_header_and_body_rejected(op, rp, code):
    form = code_form(code, client_id="rp", client_secret=SECRET)

    reply = await post_token(op, form, auth=("rp", SECRET))

    assert error_of(reply) == "invalid_request"


async def test_post_method_for_basic_client_rejected(op, rp, code):
    form = code_form(code, client_id="rp", client_secret=SECRET)

    reply = await post_token(op, form)

    assert error_of(reply, 401) == "invalid_client"


async def test_basic_method_for_post_client_rejected(op, browser, alice):
    client = await op.add_client("poster", auth_method="client_secret_post")
    code = await obtain_code(op, browser, client)

    reply = await post_token(op, code_form(code), auth=("poster", SECRET))

    assert error_of(reply, 401) == "invalid_client"


async def test_confidential_client_without_secret_rejected(op, rp, code):
    reply = await post_token(op, code_form(code, client_id="rp"))

    assert error_of(reply, 401) == "invalid_client"


async def test_public_client_with_pkce_needs_no_secret(op, browser, alice):
    client = await op.add_client("native", auth_method="none")
    code = await obtain_code(op, browser, client)

    reply = await redeem(op, client, code)

    assert reply.status_code == 200
    assert "refresh_token" in reply.json()


# -- authorization code grant (RFC 6749 4.1.3, RFC 7636 4.6) --


async def test_code_reuse_rejected(op, rp, code):
    first = await redeem(op, rp, code)
    assert first.status_code == 200

    second = await redeem(op, rp, code)

    assert error_of(second) == "invalid_grant"


async def test_code_reuse_revokes_access_token(op, rp, code):
    first = (await redeem(op, rp, code)).json()
    assert await userinfo_status(op, first["access_token"]) == 200

    await redeem(op, rp, code)

    assert await userinfo_status(op, first["access_token"]) == 401


async def test_code_reuse_revokes_refresh_token(op, rp, code):
    first = (await redeem(op, rp, code)).json()

    await redeem(op, rp, code)

    reply = await refresh(op, rp, first["refresh_token"])
    assert error_of(reply) == "invalid_grant"


async def test_code_reuse_revokes_refreshed_tokens(op, rp, code):
    first = (await redeem(op, rp, code)).json()
    rotated = (await refresh(op, rp, first["refresh_token"])).json()

    await redeem(op, rp, code)

    assert await userinfo_status(op, rotated["access_token"]) == 401
    reply = await refresh(op, rp, rotated["refresh_token"])
    assert error_of(reply) == "invalid_grant"


async def test_code_of_other_client_rejected(op, rp, code):
    other = await op.add_client("other", secret="other-secret")

    reply = await redeem(op, other, code)

    assert error_of(reply) == "invalid_grant"


async def test_code_of_other_client_stays_usable(op, rp, code):
    other = await op.add_client("other", secret="other-secret")
    await redeem(op, other, code)

    reply = await redeem(op, rp, code)

    assert reply.status_code == 200


async def test_wrong_code_verifier_rejected(op, rp, code):
    wrong, _ = pkce_pair()

    reply = await redeem(op, rp, code, code_verifier=wrong)

    assert error_of(reply) == "invalid_grant"


async def test_malformed_code_verifier_rejected(op, rp, code):
    reply = await redeem(op, rp, code, code_verifier="short")

    assert error_of(reply) == "invalid_grant"


async def test_missing_code_verifier_rejected(op, rp, code):
    reply = await redeem(op, rp, code, code_verifier=None)

    assert error_of(reply) == "invalid_grant"


async def test_unexpected_code_verifier_rejected(op, browser, rp):
    code = await obtain_code(op, browser, rp, pkce=False)
    verifier, _ = pkce_pair()

    reply = await redeem(op, rp, code, code_verifier=verifier)

    assert error_of(reply) == "invalid_grant"


async def test_code_without_pkce_redeemed(op, browser, rp):
    code = await obtain_code(op, browser, rp, pkce=False)

    reply = await redeem(op, rp, code)

    assert reply.status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9000/other",
        REDIRECT_URI + "/",
        "http://127.0.0.1:9001/callback",
    ],
)
async def test_wrong_redirect_uri_rejected(op, rp, code, redirect_uri):
    reply = await redeem(op, rp, code, redirect_uri=redirect_uri)

    assert error_of(reply) == "invalid_grant"


async def test_missing_redirect_uri_rejected(op, rp, code):
    reply = await redeem(op, rp, code, redirect_uri=None)

    assert error_of(reply) == "invalid_request"


@pytest.mark.parametrize("garbage", ["not-a-code", "Z" * 200, "é"])
async def test_garbage_code_rejected(op, rp, garbage):
    form = code_form(Code(garbage, pkce_pair()[0]))

    reply = await post_token(op, form, auth=("rp", SECRET))

    assert error_of(reply) == "invalid_grant"


async def test_missing_code_rejected(op, rp):
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI}

    reply = await post_token(op, form, auth=("rp", SECRET))

    assert error_of(reply) == "invalid_request"


# -- grant_type --


@pytest.mark.parametrize("grant_type", ["password", "implicit"])
async def test_unknown_grant_type_rejected(op, rp, grant_type):
    form = {"grant_type": grant_type, "username": "alice", "password": PASSWORD}

    reply = await post_token(op, form, auth=("rp", SECRET))

    assert error_of(reply) == "unsupported_grant_type"


async def test_missing_grant_type_rejected(op, rp, code):
    reply = await redeem(op, rp, code, grant_type=None)

    assert error_of(reply) == "invalid_request"


# -- refresh token grant (RFC 6749 6, RFC 9700 4.14.2) --


async def test_refresh_rotates_token(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()

    reply = await refresh(op, rp, tokens["refresh_token"])

    assert reply.status_code == 200
    assert reply.json()["refresh_token"] != tokens["refresh_token"]
    assert await userinfo_status(op, reply.json()["access_token"]) == 200


async def test_rotated_refresh_token_rejected(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()
    await refresh(op, rp, tokens["refresh_token"])

    reply = await refresh(op, rp, tokens["refresh_token"])

    assert error_of(reply) == "invalid_grant"


async def test_refresh_token_replay_revokes_grant(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()
    rotated = (await refresh(op, rp, tokens["refresh_token"])).json()

    await refresh(op, rp, tokens["refresh_token"])

    assert await userinfo_status(op, rotated["access_token"]) == 401
    reply = await refresh(op, rp, rotated["refresh_token"])
    assert error_of(reply) == "invalid_grant"


async def test_code_replay_after_refresh_replay_rejected(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()
    await refresh(op, rp, tokens["refresh_token"])
    await refresh(op, rp, tokens["refresh_token"])

    reply = await redeem(op, rp, code)

    assert error_of(reply) == "invalid_grant"


async def test_refresh_token_of_other_client_rejected(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()
    await op.add_client("other", secret="other-secret")
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    reply = await post_token(op, form, auth=("other", "other-secret"))

    assert error_of(reply) == "invalid_grant"


async def test_garbage_refresh_token_rejected(op, rp):
    reply = await refresh(op, rp, "not-a-refresh-token")

    assert error_of(reply) == "invalid_grant"


async def test_access_token_as_refresh_token_rejected(op, rp, code):
    tokens = (await redeem(op, rp, code)).json()

    reply = await refresh(op, rp, tokens["access_token"])

    assert error_of(reply) == "invalid_grant"


# -- malformed requests --


async def test_repeated_parameter_rejected(op, rp, code):
    body = urlencode(code_form(code)) + "&grant_type=authorization_code"
    headers = {"Authorization": basic_auth("rp", SECRET)}

    reply = await post_raw(op, body.encode(), FORM_TYPE, **headers)

    assert error_of(reply) == "invalid_request"


async def test_json_body_rejected(op, rp, code):
    body = json.dumps(code_form(code)).encode()
    headers = {"Authorization": basic_auth("rp", SECRET)}

    reply = await post_raw(op, body, "application/json", **headers)

    assert error_of(reply) == "invalid_request"


async def test_invalid_utf8_rejected(op, rp, code):
    body = urlencode(code_form(code)) + "&scope=%ff"
    headers = {"Authorization": basic_auth("rp", SECRET)}

    reply = await post_raw(op, body.encode(), FORM_TYPE, **headers)

    assert error_of(reply) == "invalid_request"


async def test_raw_non_ascii_body_rejected(op, rp, code):
    body = urlencode(code_form(code)).encode() + b"&scope=\xc3\xa9"
    headers = {"Authorization": basic_auth("rp", SECRET)}

    reply = await post_raw(op, body, FORM_TYPE, **headers)

    assert error_of(reply) == "invalid_request"


async def test_bad_percent_encoding_rejected(op, rp, code):
    body = urlencode(code_form(code)) + "&scope=%zz"
    headers = {"Authorization": basic_auth("rp", SECRET)}

    reply = await post_raw(op, body.encode(), FORM_TYPE, **headers)

    assert error_of(reply) == "invalid_request"


@pytest.mark.parametrize(
    "header",
    ["Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode()],
)
async def test_malformed_basic_header_rejected(op, rp, code, header):
    reply = await post_token(op, code_form(code), Authorization=header)

    assert error_of(reply, 401) == "invalid_client"


async def test_get_not_allowed(op):
    reply = await send("GET", op.url + "/token", None, {})

    assert reply.status_code == 405
    assert "Traceback" not in reply.text


async def test_success_reply_not_cached(op, rp, code):
    reply = await redeem(op, rp, code)

    assert reply.status_code == 200
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json()["token_type"] == "Bearer"
