"""Code redemption and refresh on the grant document (oidc/fast_grants.py).

The fast path must respond as idpyoidc did, write a grant document idpyoidc
loads and would have written, and keep codes and refresh tokens single use.
Tests that compare the two paths turn the fast path off on the provider for
one half (`provider.fast_grants = None`), which is the switch the provider
itself reads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptojwt.jwk.ec import new_ec_key
from cryptojwt.jws.jws import JWS
from idpyoidc.server.session.grant import Grant
from servers import ServerProcess
from support import REDIRECT_URI, Browser, basic_auth, pkce_pair, query_of

from porchlight_op.oidc import signing
from porchlight_op.oidc.signing import JwsSigner
from porchlight_op.store.sessions import read_nodes
from porchlight_op.web.keys import PROVIDER

PASSWORD = "correct horse battery"
SECRET = "s3cret-value"
FULL_SCOPE = "openid profile email offline_access"
GRANT_PATTERN = "pl:{*}:s:g:*"
# Values that differ between any two grants or tokens.
VOLATILE = ("id", "value", "based_on", "issued_at", "expires_at", "sub")


# -- helpers --


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode a compact JWS's header and payload without verifying it."""

    def decode(part: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return decoded

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def expected_at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class Login:
    """A signed-in browser that fetches codes for one client."""

    def __init__(self, op, browser: Browser, client_id: str) -> None:
        self.op = op
        self.browser = browser
        self.client_id = client_id
        self.verifier = ""
        self.nonce = ""

    async def code(self, scope: str = FULL_SCOPE) -> str:
        self.verifier, challenge = pkce_pair()
        self.nonce = pkce_pair()[0][:22]
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": "s-1",
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        url = self.op.url + "/authorization?" + urlencode(params)
        reply = await self.browser.authorize(url, "alice", PASSWORD)
        assert reply.status == 302
        return query_of(reply.headers["Location"])["code"]


async def post_token(
    base: str, form: dict[str, str], client_id: str = "rp"
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            base + "/token",
            data=form,
            headers={"Authorization": basic_auth(client_id, SECRET)},
        )


def code_form(code: str, verifier: str, **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    form.update(changes)
    return form


def refresh_form(refresh_token: str, **changes: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    form.update(changes)
    return form


async def grant_documents(redis) -> dict[str, dict[str, Any]]:
    keys = [key.decode() for key in await redis.keys(GRANT_PATTERN)]
    stored = await read_nodes(redis, keys)
    return {key: json.loads(node.data) for key, node in zip(keys, stored, strict=True)}


def stable(document: dict[str, Any]) -> dict[str, Any]:
    """The grant document without the values that differ between any two grants."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for name in ("issued_at", "expires_at", "sub"):
        copy.pop(name, None)
    event = copy["authentication_event"]["idpyoidc.server.authn_event.AuthnEvent"]
    copy["authentication_event"] = sorted(event)
    request = copy["authorization_request"][
        "idpyoidc.message.oidc.AuthorizationRequest"
    ]
    copy["authorization_request"] = sorted(request)
    for entry in copy.get("issued_token", []):
        for token in entry.values():
            for name in VOLATILE:
                if name in token:
                    token[name] = type(token[name]).__name__
    return copy


async def status_of_userinfo(base: str, access_token: str) -> int:
    async with httpx.AsyncClient() as http:
        reply = await http.get(
            base + "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
    return reply.status_code


async def introspect(base: str, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            base + "/introspect",
            data={"token": token},
            headers={"Authorization": basic_auth("rp", SECRET)},
        )
    assert reply.status_code == 200
    answer: dict[str, Any] = reply.json()
    return answer


@pytest.fixture
async def login(op, browser) -> Login:
    await op.add_client("rp", secret=SECRET)
    await op.add_user()
    return Login(op, browser, "rp")


async def redeem(login: Login, **changes: str) -> httpx.Response:
    code = await login.code()
    return await post_token(login.op.url, code_form(code, login.verifier, **changes))


# -- responses and token formats --


async def test_code_response_fields(login):
    reply = await redeem(login)

    body = reply.json()
    assert reply.status_code == 200
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "id_token",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["scope"] == FULL_SCOPE
    assert body["expires_in"] == login.op.settings.access_token_lifetime
    assert reply.headers["Cache-Control"] == "no-store"


async def test_code_access_token_format(login):
    body = (await redeem(login)).json()

    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert "kid" in header
    assert set(claims) == {
        "scope",
        "aud",
        "jti",
        "client_id",
        "sub",
        "sid",
        "token_class",
        "iss",
        "iat",
        "exp",
    }
    assert claims["scope"] == FULL_SCOPE
    assert claims["aud"] == ["rp"]
    assert claims["client_id"] == "rp"
    assert claims["iss"] == login.op.url
    assert claims["exp"] - claims["iat"] == login.op.settings.access_token_lifetime


async def test_refresh_token_is_opaque(login):
    body = (await redeem(login)).json()

    assert body["refresh_token"].count(".") == 0
    assert len(body["refresh_token"]) > 100


async def test_code_id_token_claims(login):
    body = (await redeem(login)).json()

    header, claims = jwt_parts(body["id_token"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == login.op.url
    assert claims["aud"] == ["rp"]
    assert claims["sub"] == jwt_parts(body["access_token"])[1]["sub"]
    assert claims["nonce"] == login.nonce
    assert claims["amr"] == ["pwd"]
    assert claims["at_hash"] == expected_at_hash(body["access_token"])
    assert claims["sid"]
    assert "auth_time" not in claims
    assert claims["exp"] - claims["iat"] == login.op.settings.id_token_lifetime


async def test_id_token_verifies_with_published_keys(login):
    body = (await redeem(login)).json()

    rp = login.op.rp(await login.op.add_client("rp2", secret=SECRET))
    await rp.discover()
    rp.client_id = "rp"
    rp.nonce = login.nonce
    claims = await rp.validate_id_token(body["id_token"])
    assert claims["sub"] == jwt_parts(body["access_token"])[1]["sub"]


async def test_auth_time_when_client_requires_it(op, browser):
    await op.add_client("rp", secret=SECRET, require_auth_time=True)
    await op.add_user()
    login = Login(op, browser, "rp")
    body = (await redeem(login)).json()
    refreshed = (await post_token(op.url, refresh_form(body["refresh_token"]))).json()

    first = jwt_parts(body["id_token"])[1]
    again = jwt_parts(refreshed["id_token"])[1]
    assert isinstance(first["auth_time"], int)
    assert again["auth_time"] == first["auth_time"]


async def test_refresh_id_token_claims(login):
    body = (await redeem(login)).json()

    reply = await post_token(login.op.url, refresh_form(body["refresh_token"]))

    refreshed = reply.json()
    first = jwt_parts(body["id_token"])[1]
    claims = jwt_parts(refreshed["id_token"])[1]
    assert reply.status_code == 200
    assert set(refreshed) == set(body)
    assert claims["nonce"] == login.nonce
    assert claims["at_hash"] == expected_at_hash(refreshed["access_token"])
    for name in ("iss", "aud", "sub", "sid", "amr", "acr"):
        assert claims[name] == first[name], name


# -- the stored grant --


async def test_fast_path_writes_what_idpyoidc_writes(login):
    provider = login.op.app[PROVIDER]
    fast = provider.fast_grants
    documents = []
    for path in (fast, None):
        provider.fast_grants = path
        await login.op.redis.delete(*await login.op.redis.keys(GRANT_PATTERN) or ["-"])
        body = (await redeem(login)).json()
        (redeemed,) = (await grant_documents(login.op.redis)).values()
        await post_token(login.op.url, refresh_form(body["refresh_token"]))
        (refreshed,) = (await grant_documents(login.op.redis)).values()
        documents.append((stable(redeemed), stable(refreshed)))
    provider.fast_grants = fast

    assert documents[0][0] == documents[1][0]
    assert documents[0][1] == documents[1][1]


async def test_fast_path_grant_loads_in_idpyoidc(login):
    body = (await redeem(login)).json()
    await post_token(login.op.url, refresh_form(body["refresh_token"]))

    (document,) = (await grant_documents(login.op.redis)).values()
    grant = Grant().load(document)
    classes = sorted(token.token_class for token in grant.issued_token)
    assert classes == ["access_token", "authorization_code", "refresh_token"]
    assert all(token.value.startswith("sha256:") for token in grant.issued_token)
    assert grant.is_active()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "idpyoidc"])
async def test_grant_parents_live_as_long(login, fast):
    if not fast:
        login.op.app[PROVIDER].fast_grants = None
    await redeem(login)

    (grant_key,) = await login.op.redis.keys(GRANT_PATTERN)
    prefix = grant_key.decode().split(":s:")[0] + ":s:"
    grant_ttl = await login.op.redis.ttl(grant_key)
    for suffix in ("u", "u:sub", "c:rp", "c:rp:sub"):
        assert await login.op.redis.ttl(prefix + suffix) >= grant_ttl - 2, suffix


async def test_fast_path_tokens_work_at_introspection(login):
    body = (await redeem(login)).json()
    refreshed = await post_token(login.op.url, refresh_form(body["refresh_token"]))
    tokens = refreshed.json()

    access = await introspect(login.op.url, tokens["access_token"])
    refresh = await introspect(login.op.url, tokens["refresh_token"])
    old_access = await introspect(login.op.url, body["access_token"])
    assert access["active"] is True
    assert access["scope"] == FULL_SCOPE
    assert refresh["active"] is True
    assert old_access == {"active": False}


async def test_revocation_after_fast_path_ends_grant(login):
    tokens = (await redeem(login)).json()
    tokens = (
        await post_token(login.op.url, refresh_form(tokens["refresh_token"]))
    ).json()

    async with httpx.AsyncClient() as http:
        reply = await http.post(
            login.op.url + "/revoke",
            data={"token": tokens["refresh_token"]},
            headers={"Authorization": basic_auth("rp", SECRET)},
        )

    assert reply.status_code == 200
    assert await status_of_userinfo(login.op.url, tokens["access_token"]) == 401
    again = await post_token(login.op.url, refresh_form(tokens["refresh_token"]))
    assert again.json()["error"] == "invalid_grant"


# -- refresh rules --


async def test_rotated_refresh_token_reuse_revokes_grant(login):
    first = (await redeem(login)).json()
    second = (
        await post_token(login.op.url, refresh_form(first["refresh_token"]))
    ).json()

    reuse = await post_token(login.op.url, refresh_form(first["refresh_token"]))

    assert reuse.json()["error"] == "invalid_grant"
    assert await status_of_userinfo(login.op.url, second["access_token"]) == 401
    after = await post_token(login.op.url, refresh_form(second["refresh_token"]))
    assert after.json()["error"] == "invalid_grant"
    assert await grant_documents(login.op.redis) == {}


async def test_refresh_with_narrower_scope(login):
    first = (await redeem(login)).json()

    reply = await post_token(
        login.op.url,
        refresh_form(first["refresh_token"], scope="openid offline_access"),
    )

    body = reply.json()
    assert reply.status_code == 200
    assert body["scope"] == "openid offline_access"
    assert jwt_parts(body["access_token"])[1]["scope"] == "openid offline_access"
    async with httpx.AsyncClient() as http:
        info = await http.get(
            login.op.url + "/userinfo",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
    assert "email" not in info.json()
    # RFC 6749 6: an omitted scope is the scope the resource owner granted.
    again = await post_token(login.op.url, refresh_form(body["refresh_token"]))
    assert again.json()["scope"] == FULL_SCOPE


async def test_refresh_with_wider_scope_rejected(login):
    first = (await redeem(login)).json()

    reply = await post_token(
        login.op.url, refresh_form(first["refresh_token"], scope="openid address")
    )

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_scope"
    after = await post_token(login.op.url, refresh_form(first["refresh_token"]))
    assert after.status_code == 200


async def test_refresh_with_wider_scope_rejected_by_idpyoidc_path(login):
    first = (await redeem(login)).json()

    reply = await post_token(
        login.op.url,
        refresh_form(first["refresh_token"], scope="openid address", extension="x"),
    )

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_scope"


async def test_refresh_with_unknown_parameter_uses_idpyoidc(login):
    first = (await redeem(login)).json()

    reply = await post_token(
        login.op.url, refresh_form(first["refresh_token"], extension="x")
    )

    assert reply.status_code == 200
    assert set(reply.json()) == set(first)


# -- code rules --


async def test_code_with_unknown_parameter_uses_idpyoidc(login):
    reply = await redeem(login, extension="x")

    body = reply.json()
    assert reply.status_code == 200
    assert set(body) >= {"access_token", "refresh_token", "id_token"}
    assert jwt_parts(body["id_token"])[1]["nonce"] == login.nonce


async def test_code_of_other_client_rejected(login):
    await login.op.add_client("other", secret=SECRET)
    code = await login.code()

    reply = await post_token(login.op.url, code_form(code, login.verifier), "other")

    assert reply.json()["error"] == "invalid_grant"


async def test_code_with_other_redirect_uri_rejected(login):
    reply = await redeem(login, redirect_uri=REDIRECT_URI + "/other")

    assert reply.json()["error"] == "invalid_grant"


async def test_code_with_wrong_verifier_rejected(login):
    code = await login.code()
    wrong, _ = pkce_pair()

    reply = await post_token(login.op.url, code_form(code, wrong))
    retry = await post_token(login.op.url, code_form(code, login.verifier))

    assert reply.json()["error"] == "invalid_grant"
    assert retry.status_code == 200


async def test_replayed_code_revokes_tokens(login):
    code = await login.code()
    first = (await post_token(login.op.url, code_form(code, login.verifier))).json()

    replay = await post_token(login.op.url, code_form(code, login.verifier))

    assert replay.json()["error"] == "invalid_grant"
    assert await status_of_userinfo(login.op.url, first["access_token"]) == 401
    refresh = await post_token(login.op.url, refresh_form(first["refresh_token"]))
    assert refresh.json()["error"] == "invalid_grant"


# -- single use across processes --

RACE_ROUNDS = 10
RACERS = 6


async def _race(servers: list[ServerProcess], form: dict[str, str]) -> Counter[str]:
    """POST one form RACERS times at once over the processes; count the outcomes."""
    clients = [
        httpx.AsyncClient(base_url=servers[i % len(servers)].url) for i in range(RACERS)
    ]
    try:
        await asyncio.gather(*(client.get("/health/live") for client in clients))
        headers = {"Authorization": basic_auth("rp", SECRET)}
        replies = await asyncio.gather(
            *(client.post("/token", data=form, headers=headers) for client in clients)
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    counts: Counter[str] = Counter()
    for reply in replies:
        counts[
            "ok" if reply.status_code == 200 else reply.json().get("error", "?")
        ] += 1
    return counts


@pytest.mark.slow
async def test_two_processes_keep_codes_and_refresh_single_use(
    op, browser, redis_server, start_server
):
    await op.add_client("rp", secret=SECRET)
    await op.add_user()
    login = Login(op, browser, "rp")
    first = start_server(redis_server, issuer=op.url, wait=False)
    second = start_server(redis_server, issuer=op.url, wait=False)
    for server in (first, second):
        server.wait_ready()
    servers = [first, second]

    for _ in range(RACE_ROUNDS):
        code = await login.code()
        code_counts = await _race(servers, code_form(code, login.verifier))
        tokens = (
            await post_token(op.url, code_form(await login.code(), login.verifier))
        ).json()
        refresh_counts = await _race(servers, refresh_form(tokens["refresh_token"]))

        assert code_counts == Counter({"ok": 1, "invalid_grant": RACERS - 1})
        assert refresh_counts["ok"] == 1
        assert set(refresh_counts) <= {"ok", "invalid_grant"}


# -- access tokens verified without cryptojwt's JWT class --
# A forged token is never in the grant, so userinfo would reject it anyway.
# These tests therefore call the provider's token resolution directly.


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resolves(login: Login, token: str) -> bool:
    provider = login.op.app[PROVIDER]
    return provider._resolve_session(token, "access_token") is not None


async def test_access_token_with_changed_payload_not_resolved(login):
    token = (await redeem(login)).json()["access_token"]
    header, _, signature = token.split(".")
    claims = jwt_parts(token)[1]
    claims["scope"] = "openid profile email address"

    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])

    assert _resolves(login, token)
    assert not _resolves(login, forged)


async def test_foreign_key_with_our_kid_rejected(login):
    token = (await redeem(login)).json()["access_token"]
    header, claims = jwt_parts(token)
    stranger = new_ec_key("P-256", kid=header["kid"])

    forged = JWS(json.dumps(claims), alg="ES256", typ="at+jwt").sign_compact([stranger])

    assert not _resolves(login, forged)


async def test_access_token_with_unknown_kid_not_resolved(login):
    token = (await redeem(login)).json()["access_token"]
    claims = jwt_parts(token)[1]
    stranger = new_ec_key("P-256", kid="not-ours")

    forged = JWS(json.dumps(claims), alg="ES256").sign_compact([stranger])

    assert not _resolves(login, forged)


async def test_expired_access_token_not_resolved(login):
    provider = login.op.app[PROVIDER]
    token = (await redeem(login)).json()["access_token"]
    claims = jwt_parts(token)[1]
    signer = JwsSigner(provider.server.keyjar, login.op.url, "ES256")

    claims["exp"] = claims["iat"] - 1
    expired = signer.sign(claims, typ="at+jwt")
    claims["exp"] = claims["iat"] + 60
    live = signer.sign(claims, typ="at+jwt")

    assert not _resolves(login, expired)
    assert _resolves(login, live)


# -- verified access tokens remembered per worker --


async def test_remembered_access_token_still_checks_the_grant(login):
    tokens = (await redeem(login)).json()
    first = await status_of_userinfo(login.op.url, tokens["access_token"])

    async with httpx.AsyncClient() as http:
        await http.post(
            login.op.url + "/revoke",
            data={"token": tokens["refresh_token"]},
            headers={"Authorization": basic_auth("rp", SECRET)},
        )
    second = await status_of_userinfo(login.op.url, tokens["access_token"])

    assert first == 200
    assert second == 401


async def test_remembered_payload_is_a_copy(login):
    provider = login.op.app[PROVIDER]
    token = (await redeem(login)).json()["access_token"]
    verifier = provider._access_verifier

    verifier.payload(token)["sid"] = "changed"

    assert verifier.payload(token)["sid"] != "changed"


async def test_remembered_tokens_are_bounded(login, monkeypatch):
    provider = login.op.app[PROVIDER]
    token = (await redeem(login)).json()["access_token"]
    claims = jwt_parts(token)[1]
    signer = JwsSigner(provider.server.keyjar, login.op.url, "ES256")
    verifier = provider._access_verifier
    monkeypatch.setattr(signing, "VERIFIED_CACHE_SIZE", 3)

    for index in range(5):
        claims["jti"] = f"token-{index}"
        assert verifier.payload(signer.sign(claims, typ="at+jwt")) is not None

    assert len(verifier._verified) == 3
