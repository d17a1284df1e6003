"""Discovery metadata and JWKS: what they advertise is what works.

Each check of an advertised value runs the feature. Each value left out is
rejected by the endpoint that would serve it (OIDC Discovery 3).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import aiohttp
import pytest
from support import REDIRECT_URI, basic_auth, pkce_pair, query_of

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
# Tested in test_client_assertions.py, because they need keys.
ASSERTION_AUTH_METHODS = ["client_secret_jwt", "private_key_jwt"]
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def fetch(op, path: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(op.url + path) as response,
    ):
        return response.status, await response.json()


@pytest.fixture
async def metadata(op) -> dict:
    status, body = await fetch(op, "/.well-known/openid-configuration")
    assert status == 200
    return body


@pytest.fixture
async def jwks(op, metadata) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.get(metadata["jwks_uri"]) as response,
    ):
        assert response.status == 200
        body: dict = await response.json()
    return body


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


async def sign_in(op, browser, client, metadata, **extra: str):
    """Run an authorization request as alice and return the OP's last reply."""
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    url = metadata["authorization_endpoint"] + "?" + urlencode(params)
    return await browser.authorize(url, "alice", PASSWORD)


async def post_token(metadata, form, client_id="rp", secret=SECRET):
    headers = {"Authorization": basic_auth(client_id, secret)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(metadata["token_endpoint"], data=form, headers=headers) as reply,
    ):
        return reply.status, await reply.json()


# -- the document itself --


async def test_issuer_is_server_url(op, metadata):
    assert metadata["issuer"] == op.url


async def test_endpoints_under_issuer(op, metadata):
    for name in ("authorization", "token", "userinfo"):
        assert metadata[f"{name}_endpoint"].startswith(op.url + "/")
    assert metadata["jwks_uri"].startswith(op.url + "/")


@pytest.mark.parametrize(
    ("member", "method"),
    [
        ("authorization_endpoint", "GET"),
        ("authorization_endpoint", "POST"),
        ("token_endpoint", "POST"),
        ("userinfo_endpoint", "GET"),
        ("userinfo_endpoint", "POST"),
        ("jwks_uri", "GET"),
    ],
)
async def test_advertised_endpoint_answers(metadata, member, method):
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, metadata[member], allow_redirects=False) as response,
    ):
        status = response.status
        body = await response.text()

    assert status not in (404, 405)
    assert status < 500
    assert "Traceback" not in body


async def test_no_inline_jwks(metadata):
    assert "jwks" not in metadata


async def test_metadata_has_no_private_key_members(metadata):
    text = json.dumps(metadata)

    for member in PRIVATE_MEMBERS:
        assert f'"{member}":' not in text


async def test_metadata_not_private(op):
    async with (
        aiohttp.ClientSession() as http,
        http.get(op.url + "/.well-known/openid-configuration") as response,
    ):
        assert response.content_type == "application/json"
        assert "private" not in response.headers.get("Cache-Control", "")


# -- JWKS --


async def test_jwks_has_only_public_members(jwks):
    assert jwks["keys"]
    for key in jwks["keys"]:
        for member in PRIVATE_MEMBERS:
            assert member not in key, f"{key.get('kid')} exposes {member}"


async def test_jwks_keys_have_kid_and_use(jwks):
    for key in jwks["keys"]:
        assert key["kid"]
        assert key.get("use", "sig") == "sig"


async def test_jwks_verifies_id_token(op, browser, alice, metadata, jwks):
    client = await op.add_client("rp", secret=SECRET)
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])

    assert claims["iss"] == op.url
    assert claims["sub"] == alice.sub
    header_part = token["id_token"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * 4))
    assert header["alg"] in metadata["id_token_signing_alg_values_supported"]
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}


# -- response types --


async def test_only_code_response_type_advertised(metadata):
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]


async def test_advertised_response_types_work(op, browser, alice, metadata):
    client = await op.add_client("rp", secret=SECRET)

    for response_type in metadata["response_types_supported"]:
        reply = await sign_in(
            op, browser, client, metadata, response_type=response_type
        )
        assert "code" in query_of(reply.headers["Location"])


@pytest.mark.parametrize("response_type", ["id_token", "code token"])
async def test_unadvertised_response_type_rejected(
    op, browser, alice, metadata, response_type
):
    client = await op.add_client("rp", secret=SECRET)

    reply = await sign_in(op, browser, client, metadata, response_type=response_type)

    assert query_of(reply.headers["Location"])["error"] == "unsupported_response_type"


async def test_unadvertised_response_mode_rejected(op, browser, alice, metadata):
    client = await op.add_client("rp", secret=SECRET)

    reply = await sign_in(op, browser, client, metadata, response_mode="fragment")

    assert reply.status == 302
    assert "error" in query_of(reply.headers["Location"])


# -- grant types --


async def test_grant_types_advertised(metadata):
    expected = {"authorization_code", "refresh_token", "client_credentials"}
    assert set(metadata["grant_types_supported"]) == expected


async def test_advertised_grant_types_work(op, browser, alice, metadata):
    client = await op.add_client("rp", secret=SECRET)
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)

    token = await rp.redeem(reply.headers["Location"])
    refreshed = await rp.refresh(token["refresh_token"])

    assert token["access_token"]
    assert refreshed["access_token"]


@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
    ],
)
async def test_unadvertised_grant_type_rejected(op, metadata, grant_type):
    await op.add_client("rp", secret=SECRET)
    form = {"grant_type": grant_type, "username": "alice", "password": PASSWORD}

    status, body = await post_token(metadata, form)

    assert status == 400
    assert body["error"] == "unsupported_grant_type"


# -- client authentication methods --


async def test_auth_methods_advertised(metadata):
    advertised = metadata["token_endpoint_auth_methods_supported"]
    assert sorted(advertised) == sorted([*AUTH_METHODS, *ASSERTION_AUTH_METHODS])


@pytest.mark.parametrize("auth_method", AUTH_METHODS)
async def test_advertised_auth_method_works(op, browser, alice, auth_method):
    client = await op.add_client(f"rp-{auth_method}", auth_method=auth_method)
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)

    token = await rp.redeem(reply.headers["Location"])

    assert token["id_token"]


@pytest.mark.parametrize("auth_method", ASSERTION_AUTH_METHODS)
async def test_assertion_rejected_for_secret_client(
    op, browser, alice, metadata, auth_method
):
    client = await op.add_client("rp", secret=SECRET)
    verifier, challenge = pkce_pair()
    reply = await sign_in(op, browser, client, metadata, code_challenge=challenge)
    code = query_of(reply.headers["Location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": "rp",
        "client_assertion_type": JWT_BEARER_ASSERTION,
        "client_assertion": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
    }

    async with (
        aiohttp.ClientSession() as http,
        http.post(metadata["token_endpoint"], data=form) as response,
    ):
        status = response.status
        body = await response.json()

    assert status == 401
    assert body["error"] == "invalid_client"


# -- PKCE methods --


async def test_only_s256_advertised(metadata):
    assert metadata["code_challenge_methods_supported"] == ["S256"]


async def test_s256_works(op, browser, alice, metadata):
    client = await op.add_client("native", auth_method="none")
    verifier, challenge = pkce_pair()
    reply = await sign_in(op, browser, client, metadata, code_challenge=challenge)
    form = {
        "grant_type": "authorization_code",
        "code": query_of(reply.headers["Location"])["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": "native",
    }

    async with (
        aiohttp.ClientSession() as http,
        http.post(metadata["token_endpoint"], data=form) as response,
    ):
        assert response.status == 200


async def test_plain_pkce_rejected(op, browser, alice, metadata):
    client = await op.add_client("native", auth_method="none")

    reply = await sign_in(
        op,
        browser,
        client,
        metadata,
        code_challenge="p" * 43,
        code_challenge_method="plain",
    )

    assert query_of(reply.headers["Location"])["error"] == "invalid_request"


# -- other advertised flags --


async def test_request_objects_not_advertised(metadata):
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False


async def test_iss_parameter_advertised(op, browser, alice, metadata):
    client = await op.add_client("rp", secret=SECRET)

    reply = await sign_in(op, browser, client, metadata)

    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert query_of(reply.headers["Location"])["iss"] == metadata["issuer"]


async def test_advertised_scopes_accepted(op, browser, alice, metadata):
    scopes = metadata["scopes_supported"]
    client = await op.add_client("rp", secret=SECRET, scope=tuple(scopes))

    reply = await sign_in(op, browser, client, metadata, scope=" ".join(scopes))

    assert "openid" in scopes
    assert "code" in query_of(reply.headers["Location"])
