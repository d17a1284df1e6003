"""Access token formats: RFC 9068 JWTs by default, opaque references on request."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from token_flow import PASSWORD, add_client, bearer_get, get_json, post_form, sign_in


@pytest.fixture
async def alice(op):
    return await op.add_user()


async def decode(op, token: str):
    keys = KeySet.import_key_set(await get_json(op.url + "/jwks"))
    return jwt.decode(token, keys)


async def test_jwt_access_token_is_rfc9068(op, browser, alice):
    client = await add_client(op, "rp")
    tokens = await sign_in(op, browser, client)

    decoded = await decode(op, tokens["access_token"])
    claims = decoded.claims

    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "ES256"
    assert claims["iss"] == op.url
    assert claims["sub"] == alice.sub
    assert claims["client_id"] == "rp"
    assert claims["aud"]
    assert claims["jti"]
    assert isinstance(claims["scope"], str)
    assert "openid" in claims["scope"].split()
    assert claims["iat"] <= time.time() < claims["exp"]


async def test_refreshed_jwt_is_rfc9068(op, browser, alice):
    client = await add_client(op, "rp")
    tokens = await sign_in(op, browser, client)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    refreshed = (await post_form(op.url + "/token", form, client)).json()
    decoded = await decode(op, refreshed["access_token"])

    assert decoded.header["typ"] == "at+jwt"
    assert isinstance(decoded.claims["scope"], str)


@pytest.fixture
async def opaque(op):
    return await add_client(op, "rp", access_token_format="opaque")


async def test_opaque_token_is_random_reference(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)

    assert "." not in tokens["access_token"]
    assert len(tokens["access_token"]) >= 43


async def test_opaque_token_works_at_userinfo(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)

    reply = await bearer_get(op.url + "/userinfo", tokens["access_token"])

    assert reply.status_code == 200
    assert reply.json()["sub"] == alice.sub


async def test_refresh_issues_opaque_token(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    refreshed = (await post_form(op.url + "/token", form, opaque)).json()
    reply = await bearer_get(op.url + "/userinfo", refreshed["access_token"])

    assert "." not in refreshed["access_token"]
    assert reply.status_code == 200


async def test_refresh_ends_previous_opaque_token(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    await post_form(op.url + "/token", form, opaque)

    reply = await bearer_get(op.url + "/userinfo", tokens["access_token"])

    assert reply.status_code == 401


async def test_opaque_token_introspected(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)

    form = {"token": tokens["access_token"]}
    body = (await post_form(op.url + "/introspect", form, opaque)).json()

    assert body["active"] is True
    assert body["sub"] == alice.sub
    assert body["client_id"] == "rp"


async def test_opaque_token_revoked(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)

    await post_form(op.url + "/revoke", {"token": tokens["access_token"]}, opaque)
    userinfo = await bearer_get(op.url + "/userinfo", tokens["access_token"])
    form = {"token": tokens["access_token"]}
    body = (await post_form(op.url + "/introspect", form, opaque)).json()

    assert userinfo.status_code == 401
    assert body == {"active": False}


async def test_unknown_opaque_token_rejected(op, opaque):
    reply = await bearer_get(op.url + "/userinfo", "A" * 43)

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"


async def test_redis_holds_no_usable_token(op, browser, alice, opaque):
    tokens = await sign_in(op, browser, opaque)

    stored = [await op.redis.get(key) for key in await op.redis.keys("pl:at:*")]

    assert len(stored) == 1
    assert b"eyJ" not in stored[0]
    assert tokens["access_token"].encode() not in stored[0]


async def test_client_credentials_opaque(op):
    service = await add_client(
        op,
        "service",
        grant_types=("client_credentials",),
        access_token_format="opaque",
    )

    form = {"grant_type": "client_credentials"}
    token = (await post_form(op.url + "/token", form, service)).json()
    seen = await post_form(
        op.url + "/introspect", {"token": token["access_token"]}, service
    )

    assert "." not in token["access_token"]
    assert seen.json()["active"] is True
    assert seen.json()["sub"] == "service"


async def test_opaque_id_token_has_no_at_hash(op, browser, alice, opaque):
    rp = op.rp(opaque)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    tokens = await rp.redeem(reply.headers["Location"])

    claims = await rp.validate_id_token(tokens["id_token"])

    # An at_hash over the JWT would not match the opaque token the client holds.
    assert "at_hash" not in claims
