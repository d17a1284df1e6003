"""Token introspection (RFC 7662): only the token's own client learns anything."""

from __future__ import annotations

import time

import pytest
from flows import introspect
from token_flow import add_client, get_json, post_form, sign_in


@pytest.fixture
async def alice(op):
    return await op.add_user()


@pytest.fixture
async def rp(op):
    return await add_client(op, "rp")


async def test_discovery_lists_introspection(op):
    metadata = await get_json(op.url + "/.well-known/openid-configuration")

    assert metadata["introspection_endpoint"] == op.url + "/introspect"


async def test_active_access_token_described(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await introspect(op, rp, tokens["access_token"])
    body = reply.json()

    assert reply.status_code == 200
    assert reply.headers["Cache-Control"] == "no-store"
    assert body["active"] is True
    assert body["client_id"] == "rp"
    assert body["sub"] == alice.sub
    assert body["iss"] == op.url
    assert body["token_type"] == "Bearer"
    assert body["aud"]
    assert set(body["scope"].split()) >= {"openid", "profile", "email"}
    assert body["iat"] <= time.time() < body["exp"]


async def test_active_refresh_token_described(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await introspect(op, rp, tokens["refresh_token"], "refresh_token")
    body = reply.json()

    assert body["active"] is True
    assert body["client_id"] == "rp"
    assert body["sub"] == alice.sub
    assert "offline_access" in body["scope"].split()
    assert body["exp"] > time.time()


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 43])
async def test_unknown_token_inactive(op, rp, token):
    reply = await introspect(op, rp, token)

    assert reply.status_code == 200
    assert reply.json() == {"active": False}


async def test_other_clients_token_inactive(op, browser, alice, rp):
    other = await add_client(op, "other")
    tokens = await sign_in(op, browser, rp)

    access = await introspect(op, other, tokens["access_token"])
    refresh = await introspect(op, other, tokens["refresh_token"])

    assert access.json() == {"active": False}
    assert refresh.json() == {"active": False}


async def test_revoked_token_inactive(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)
    await post_form(op.url + "/revoke", {"token": tokens["refresh_token"]}, rp)

    access = await introspect(op, rp, tokens["access_token"])
    refresh = await introspect(op, rp, tokens["refresh_token"])

    assert access.json() == {"active": False}
    assert refresh.json() == {"active": False}


async def test_rotated_refresh_token_inactive(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    await post_form(op.url + "/token", form, rp)

    reply = await introspect(op, rp, tokens["refresh_token"])

    assert reply.json() == {"active": False}


async def test_unauthenticated_is_invalid_client(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await post_form(op.url + "/introspect", {"token": tokens["access_token"]})

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_wrong_secret_is_invalid_client(op, rp):
    form = {"token": "anything", "client_id": "rp", "client_secret": "wrong"}

    reply = await post_form(op.url + "/introspect", form)

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_introspection_writes_nothing(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)
    before = await _snapshot(op.redis)

    await introspect(op, rp, tokens["access_token"])
    await introspect(op, rp, tokens["refresh_token"])

    assert before
    assert await _snapshot(op.redis) == before


async def _snapshot(redis) -> dict[bytes, bytes]:
    """Every key of the OP's session state with its serialized value."""
    keys = sorted(await redis.keys("pl:{*}:s:*"))
    return {key: await redis.dump(key) for key in keys}


async def test_public_client_is_invalid_client(op, browser, alice):
    spa = await add_client(op, "spa", auth_method="none")
    tokens = await sign_in(op, browser, spa)

    form = {"token": tokens["access_token"], "client_id": "spa"}
    reply = await post_form(op.url + "/introspect", form)

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
