"""The client_credentials grant (RFC 6749 4.4): tokens for a client without a user."""

from __future__ import annotations

import json
import time

import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from cryptojwt import KeyJar
from joserfc import jwt
from joserfc.jwk import KeySet
from token_flow import SECRET, add_client, bearer_get, get_json, post_form

from porchlight_op.oidc.access_tokens import mint_client_token
from porchlight_op.settings import SettingsError, load_settings

CLIENT_GRANTS = ("client_credentials",)
SCOPE = ("openid", "profile", "email", "offline_access", "api:read", "api:write")


@pytest.fixture
async def service(op):
    return await add_client(op, "service", grant_types=CLIENT_GRANTS, scope=SCOPE)


async def fetch_token(op, client_id: str, scope: str | None = None) -> dict:
    async with AsyncOAuth2Client(client_id, SECRET, scope=scope) as client:
        return await client.fetch_token(
            op.url + "/token", grant_type="client_credentials"
        )


async def test_token_issued_without_refresh(op, service):
    token = await fetch_token(op, "service")

    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 900
    assert "refresh_token" not in token
    assert "id_token" not in token


async def test_token_is_rfc9068_jwt(op, service):
    token = await fetch_token(op, "service", scope="api:read")
    keys = KeySet.import_key_set(await get_json(op.url + "/jwks"))

    decoded = jwt.decode(token["access_token"], keys)

    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["sub"] == "service"
    assert decoded.claims["client_id"] == "service"
    assert decoded.claims["iss"] == op.url
    assert decoded.claims["scope"] == "api:read"
    assert decoded.claims["exp"] > time.time()
    assert decoded.claims["jti"]
    assert decoded.claims["aud"]


async def test_default_scope_leaves_out_user_scopes(op, service):
    token = await fetch_token(op, "service")

    assert token["scope"].split() == ["profile", "email", "api:read", "api:write"]


@pytest.mark.parametrize("scope", ["admin", "openid", "api:read offline_access"])
async def test_unregistered_scope_rejected(op, service, scope):
    form = {"grant_type": "client_credentials", "scope": scope}

    reply = await post_form(op.url + "/token", form, service)

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_scope"


async def test_client_without_grant_unauthorized(op):
    client = await add_client(op, "rp")
    form = {"grant_type": "client_credentials"}

    reply = await post_form(op.url + "/token", form, client)

    assert reply.status_code == 400
    assert reply.json()["error"] == "unauthorized_client"


async def test_public_client_unauthorized(op):
    await add_client(op, "spa", auth_method="none")
    form = {"grant_type": "client_credentials", "client_id": "spa"}

    reply = await post_form(op.url + "/token", form)

    assert reply.status_code == 400
    assert reply.json()["error"] == "unauthorized_client"


async def test_code_grant_refused_to_service(op, service):
    form = {
        "grant_type": "authorization_code",
        "code": "x",
        "redirect_uri": "http://127.0.0.1:9000/callback",
    }

    reply = await post_form(op.url + "/token", form, service)

    assert reply.status_code == 400
    assert reply.json()["error"] == "unauthorized_client"


async def test_wrong_secret_invalid_client(op, service):
    form = {
        "grant_type": "client_credentials",
        "client_id": "service",
        "client_secret": "wrong",
    }

    reply = await post_form(op.url + "/token", form)

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_userinfo_rejects_client_token(op, service):
    token = await fetch_token(op, "service")

    reply = await bearer_get(op.url + "/userinfo", token["access_token"])

    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"


async def test_introspection_reports_client_token(op, service):
    token = await fetch_token(op, "service", scope="api:write")
    form = {"token": token["access_token"]}

    body = (await post_form(op.url + "/introspect", form, service)).json()

    assert body["active"] is True
    assert body["client_id"] == "service"
    assert body["sub"] == "service"
    assert body["scope"] == "api:write"
    assert body["token_type"] == "Bearer"


async def test_revoked_client_token_inactive(op, service):
    token = await fetch_token(op, "service")
    form = {"token": token["access_token"]}

    revoked = await post_form(op.url + "/revoke", form, service)
    body = (await post_form(op.url + "/introspect", form, service)).json()

    assert revoked.status_code == 200
    assert body == {"active": False}


async def test_other_client_cannot_revoke(op, service):
    other = await add_client(op, "other", grant_types=CLIENT_GRANTS)
    token = await fetch_token(op, "service")
    form = {"token": token["access_token"]}

    await post_form(op.url + "/revoke", form, other)
    seen_by_other = (await post_form(op.url + "/introspect", form, other)).json()
    seen_by_owner = (await post_form(op.url + "/introspect", form, service)).json()

    assert seen_by_other == {"active": False}
    assert seen_by_owner["active"] is True


def test_toml_grant_types_and_keys(tmp_path):
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "op.toml").write_text(
        f"""
        [clients.service]
        redirect_uris = ["https://service.example/cb"]
        auth_method = "private_key_jwt"
        jwks_file = "{tmp_path / "jwks.json"}"
        grant_types = ["client_credentials"]
        access_token_format = "opaque"
        """
    )

    client = load_settings(tmp_path / "op.toml", environ={}).clients["service"]

    assert client.grant_types == ("client_credentials",)
    assert client.jwks == jwks
    assert client.secret is None
    assert client.access_token_format == "opaque"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('secret = "s"\ngrant_types = ["password"]', "grant_types"),
        ('secret = "s"\naccess_token_format = "paseto"', "access_token_format"),
        ('auth_method = "none"\ngrant_types = ["client_credentials"]', "grant_types"),
        ('auth_method = "client_secret_jwt"\nsecret = "short"', "secret"),
        ('auth_method = "private_key_jwt"', "jwks_file"),
    ],
)
def test_toml_token_settings_validated(tmp_path, table, key):
    path = tmp_path / "op.toml"
    path.write_text(
        '[clients.rp]\nredirect_uris = ["https://rp.example/cb"]\n' + table + "\n"
    )

    with pytest.raises(SettingsError) as failure:
        load_settings(path, environ={})

    assert failure.value.key == f"clients.rp.{key}"


async def test_expired_client_token_inactive(op, service, signing_jwks):
    keyjar = KeyJar()
    keyjar.import_jwks(json.loads(signing_jwks), op.url)
    expired = mint_client_token(keyjar, op.url, "service", "api:read", -60)

    body = (await post_form(op.url + "/introspect", {"token": expired}, service)).json()
    userinfo = await bearer_get(op.url + "/userinfo", expired)

    assert body == {"active": False}
    assert userinfo.status_code == 401
