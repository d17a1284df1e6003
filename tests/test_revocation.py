"""Token revocation (RFC 7009): tokens of the calling client end, others never tell."""

from __future__ import annotations

import pytest
from flows import refresh, revoke
from token_flow import add_client, bearer_get, get_json, post_form, sign_in


@pytest.fixture
async def alice(op):
    return await op.add_user()


@pytest.fixture
async def rp(op):
    return await add_client(op, "rp")


async def test_discovery_lists_revocation(op):
    metadata = await get_json(op.url + "/.well-known/openid-configuration")

    assert metadata["revocation_endpoint"] == op.url + "/revoke"
    assert "private_key_jwt" in metadata["revocation_endpoint_auth_methods_supported"]


async def test_revoked_access_token_rejected(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await revoke(op, rp, tokens["access_token"], "access_token")
    userinfo = await bearer_get(op.url + "/userinfo", tokens["access_token"])

    assert reply.status_code == 200
    assert reply.content == b""
    assert userinfo.status_code == 401


async def test_access_token_revocation_keeps_refresh(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    await revoke(op, rp, tokens["access_token"])
    refreshed = await refresh(op, rp, tokens["refresh_token"])

    assert refreshed.status_code == 200


async def test_revoked_refresh_token_cannot_refresh(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await revoke(op, rp, tokens["refresh_token"], "refresh_token")
    refreshed = await refresh(op, rp, tokens["refresh_token"])

    assert reply.status_code == 200
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


async def test_refresh_revocation_ends_access_tokens(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    await revoke(op, rp, tokens["refresh_token"])
    userinfo = await bearer_get(op.url + "/userinfo", tokens["access_token"])

    assert userinfo.status_code == 401


async def test_wrong_hint_still_revokes(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    await revoke(op, rp, tokens["refresh_token"], "access_token")
    refreshed = await refresh(op, rp, tokens["refresh_token"])

    assert refreshed.status_code == 400


async def test_unsupported_hint_ignored(op, browser, alice, rp):
    tokens = await sign_in(op, browser, rp)

    reply = await revoke(op, rp, tokens["access_token"], "saml_assertion")
    userinfo = await bearer_get(op.url + "/userinfo", tokens["access_token"])

    assert reply.status_code == 200
    assert userinfo.status_code == 401


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 43])
async def test_unknown_token_answers_200(op, rp, token):
    reply = await revoke(op, rp, token)

    assert reply.status_code == 200
    assert reply.content == b""


async def test_other_clients_token_untouched(op, browser, alice, rp):
    other = await add_client(op, "other")
    tokens = await sign_in(op, browser, rp)

    access = await revoke(op, other, tokens["access_token"])
    refresh_reply = await revoke(op, other, tokens["refresh_token"])
    userinfo = await bearer_get(op.url + "/userinfo", tokens["access_token"])
    refreshed = await refresh(op, rp, tokens["refresh_token"])

    assert access.status_code == 200
    assert access.content == b""
    assert refresh_reply.status_code == 200
    assert userinfo.status_code == 200
    assert refreshed.status_code == 200


async def test_wrong_secret_is_invalid_client(op, rp):
    form = {"token": "anything", "client_id": "rp", "client_secret": "wrong"}

    reply = await post_form(op.url + "/revoke", form)

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_unauthenticated_is_invalid_client(op, rp):
    reply = await post_form(op.url + "/revoke", {"token": "anything"})

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_missing_token_is_invalid_request(op, rp):
    reply = await post_form(op.url + "/revoke", {}, rp)

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"


async def test_public_client_revokes_own_token(op, browser, alice):
    spa = await add_client(op, "spa", auth_method="none")
    tokens = await sign_in(op, browser, spa)

    form = {"token": tokens["refresh_token"], "client_id": "spa"}
    reply = await post_form(op.url + "/revoke", form)
    refreshed = await post_form(
        op.url + "/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "spa",
        },
    )

    assert reply.status_code == 200
    assert refreshed.status_code == 400
