"""private_key_jwt and client_secret_jwt (RFC 7523 2.2, OIDC Core 9), via Authlib."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from flows import (
    assertion_form,
    jwks_of,
    key_assertion,
    run_cli,
    secret_assertion,
)
from joserfc.jwk import ECKey, RSAKey
from support import RelyingParty
from token_flow import LONG_SECRET, PASSWORD, SECRET, add_client, get_json, post_form

from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore

GRANTS = ("authorization_code", "refresh_token", "client_credentials")


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1"})


@pytest.fixture
async def signed(op, key):
    """A private_key_jwt client with an inline JWK Set."""
    return await add_client(
        op,
        "signed",
        auth_method="private_key_jwt",
        jwks=jwks_of(key),
        grant_types=GRANTS,
    )


@pytest.fixture
async def hmac_client(op):
    return await add_client(
        op, "hmac", auth_method="client_secret_jwt", grant_types=GRANTS
    )


async def token_with(op, assertion_value: str, client_id: str | None = None):
    form = assertion_form(assertion_value, grant_type="client_credentials")
    if client_id is not None:
        form["client_id"] = client_id
    return await post_form(op.url + "/token", form)


def assert_invalid_client(reply) -> None:
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


# -- accepted --


async def test_private_key_jwt_via_authlib(op, signed, key):
    endpoint = op.url + "/token"
    auth = PrivateKeyJWT(endpoint, alg="ES256")
    async with AsyncOAuth2Client(
        "signed", key, token_endpoint_auth_method=auth
    ) as client:
        token = await client.fetch_token(endpoint, grant_type="client_credentials")

    assert token["access_token"]


async def test_private_key_jwt_redeems_code(op, browser, key):
    await op.add_user()
    await add_client(op, "signed", auth_method="private_key_jwt", jwks=jwks_of(key))
    auth = PrivateKeyJWT(op.url + "/token", alg="ES256")
    rp = RelyingParty(op.url, "signed", key, auth)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)

    tokens = await rp.redeem(reply.headers["Location"])

    assert tokens["id_token"]
    assert tokens["refresh_token"]


async def test_client_secret_jwt_via_authlib(op, hmac_client):
    endpoint = op.url + "/token"
    async with AsyncOAuth2Client(
        "hmac", LONG_SECRET, token_endpoint_auth_method=ClientSecretJWT(endpoint)
    ) as client:
        token = await client.fetch_token(endpoint, grant_type="client_credentials")

    assert token["access_token"]


async def test_issuer_accepted_as_audience(op, signed, key):
    value = key_assertion(op, key, audience=op.url)

    reply = await token_with(op, value)

    assert reply.status_code == 200


async def test_rsa_key_accepted(op):
    rsa = RSAKey.generate_key(2048)
    await add_client(
        op, "rsa", auth_method="private_key_jwt", jwks=jwks_of(rsa), grant_types=GRANTS
    )

    reply = await token_with(op, key_assertion(op, rsa, "rsa", "RS256"))

    assert reply.status_code == 200


async def test_assertion_works_at_revocation(op, signed, key):
    form = assertion_form(key_assertion(op, key), token="unknown")

    reply = await post_form(op.url + "/revoke", form)

    assert reply.status_code == 200


# -- jwks_uri --


@pytest.fixture
async def jwks_server(aiohttp_server, key):
    """The client's JWK Set on 127.0.0.1, counting the fetches."""
    served = {"jwks": jwks_of(key), "hits": 0}

    async def handler(request: web.Request) -> web.Response:
        served["hits"] += 1
        return web.json_response(served["jwks"])

    app = web.Application()
    app.router.add_get("/jwks.json", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    served["url"] = str(server.make_url("/jwks.json"))
    return served


async def test_jwks_uri_fetched_and_cached(op, key, jwks_server):
    await add_client(
        op,
        "remote",
        auth_method="private_key_jwt",
        jwks_uri=jwks_server["url"],
        grant_types=GRANTS,
    )

    first = await token_with(op, key_assertion(op, key, "remote"))
    second = await token_with(op, key_assertion(op, key, "remote"))

    assert first.status_code == 200
    assert second.status_code == 200
    assert jwks_server["hits"] == 1


async def test_jwks_uri_refetched_after_rotation(op, key, jwks_server):
    await add_client(
        op,
        "remote",
        auth_method="private_key_jwt",
        jwks_uri=jwks_server["url"],
        grant_types=GRANTS,
    )
    await token_with(op, key_assertion(op, key, "remote"))
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    jwks_server["jwks"] = jwks_of(rotated)
    await _backdate_jwks_cache(op.redis, "remote", seconds=60)

    reply = await token_with(op, key_assertion(op, rotated, "remote"))

    assert reply.status_code == 200
    assert jwks_server["hits"] == 2


async def test_bad_assertion_refetch_rate_limited(op, key, jwks_server):
    await add_client(
        op,
        "remote",
        auth_method="private_key_jwt",
        jwks_uri=jwks_server["url"],
        grant_types=GRANTS,
    )
    await token_with(op, key_assertion(op, key, "remote"))
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})

    replies = [
        await token_with(op, key_assertion(op, stranger, "remote")) for _ in range(3)
    ]

    for reply in replies:
        assert_invalid_client(reply)
    assert jwks_server["hits"] == 1


async def _backdate_jwks_cache(redis, client_id: str, seconds: int) -> None:
    """Make the cached JWK Set look fetched `seconds` earlier."""
    key = keys.client_jwks(client_id)
    document = json.loads(await redis.get(key))
    document["fetched_at"] -= seconds
    await redis.set(key, json.dumps(document), keepttl=True)


async def test_unreachable_jwks_uri_is_invalid_client(op, key, jwks_server):
    await add_client(
        op,
        "remote",
        auth_method="private_key_jwt",
        jwks_uri=jwks_server["url"].replace("jwks.json", "missing"),
        grant_types=GRANTS,
    )

    reply = await token_with(op, key_assertion(op, key, "remote"))

    assert_invalid_client(reply)


# -- refused --


async def test_wrong_audience_refused(op, signed, key):
    value = key_assertion(op, key, audience="https://elsewhere/token")

    assert_invalid_client(await token_with(op, value))


async def test_expired_assertion_refused(op, signed, key):
    past = int(time.time()) - 600
    value = key_assertion(op, key, issued_at=past - 60, expires_at=past)

    assert_invalid_client(await token_with(op, value))


async def test_far_future_expiry_refused(op, signed, key):
    value = key_assertion(op, key, expires_in=2 * 3600)

    assert_invalid_client(await token_with(op, value))


async def test_replayed_jti_refused(op, signed, key):
    value = key_assertion(op, key)

    first = await token_with(op, value)
    second = await token_with(op, value)

    assert first.status_code == 200
    assert_invalid_client(second)


async def test_wrong_key_refused(op, signed):
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})

    assert_invalid_client(await token_with(op, key_assertion(op, stranger)))


async def test_issuer_other_than_client_refused(op, signed, key):
    value = key_assertion(op, key, claims={"sub": "someone-else"})

    assert_invalid_client(await token_with(op, value))


async def test_client_id_mismatch_refused(op, signed, key):
    await add_client(op, "rp")

    assert_invalid_client(await token_with(op, key_assertion(op, key), client_id="rp"))


async def test_hmac_assertion_for_key_client_refused(op, signed):
    value = secret_assertion(op, LONG_SECRET, "signed")

    assert_invalid_client(await token_with(op, value))


async def test_wrong_secret_hmac_refused(op, hmac_client):
    value = secret_assertion(op, "x" * 40, "hmac")

    assert_invalid_client(await token_with(op, value))


async def test_assertion_for_secret_client_refused(op, key):
    await add_client(op, "rp", grant_types=GRANTS, secret=LONG_SECRET)

    value = secret_assertion(op, LONG_SECRET, "rp")

    assert_invalid_client(await token_with(op, value))


async def test_missing_jti_refused(op, hmac_client):
    value = secret_assertion(op, LONG_SECRET, "hmac", claims={"jti": ""})

    assert_invalid_client(await token_with(op, value))


async def test_wrong_assertion_type_refused(op, signed, key):
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:example:other",
        "client_assertion": key_assertion(op, key),
    }

    assert_invalid_client(await post_form(op.url + "/token", form))


async def test_secret_post_for_key_client_refused(op, signed):
    form = {
        "grant_type": "client_credentials",
        "client_id": "signed",
        "client_secret": SECRET,
    }

    assert_invalid_client(await post_form(op.url + "/token", form))


async def test_discovery_lists_assertion_methods(op):
    metadata = await get_json(op.url + "/.well-known/openid-configuration")

    methods = metadata["token_endpoint_auth_methods_supported"]
    algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert {"private_key_jwt", "client_secret_jwt"} <= set(methods)
    assert {"ES256", "RS256", "HS256"} <= set(algs)
    assert "none" not in algs


# -- registration --


def test_cli_registers_key_client(tmp_path, server, capsys, key):
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(key)))

    code, out, _ = run_cli(
        capsys,
        "client", "add", "signed",
        "--redirect-uri", "https://app.example/cb",
        "--auth-method", "private_key_jwt",
        "--jwks-file", str(jwks_file),
        "--grant-type", "client_credentials",
        "--grant-type", "authorization_code",
        "--access-token-format", "opaque",
    )  # fmt: skip
    stored = asyncio.run(_stored_client(server.url, "signed"))

    assert code == 0
    assert "secret:" not in out
    assert stored.secret is None
    assert stored.jwks == jwks_of(key)
    assert stored.grant_types == ("client_credentials", "authorization_code")
    assert stored.access_token_format == "opaque"


def test_cli_rejects_key_client_without_keys(data_dir, capsys):
    code, _, err = run_cli(
        capsys,
        "client", "add", "signed",
        "--redirect-uri", "https://app.example/cb",
        "--auth-method", "private_key_jwt",
    )  # fmt: skip

    assert code != 0
    assert "jwks" in err


async def _stored_client(url: str, client_id: str):
    redis = aioredis.from_url(url)
    try:
        return await ClientStore(redis).get(client_id)
    finally:
        await redis.aclose()
