"""Authentication request parameters: prompt, max_age, hints, acr and amr.

OIDC Core 3.1.2.1 to 3.1.2.3, over real HTTP, with ID tokens checked by Authlib.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import pytest
from cryptojwt import KeyJar
from cryptojwt.jwt import JWT
from support import hidden_inputs, query_of

from porchlight_op.oidc.provider import ACR_PASSWORD

PASSWORD = "correct horse battery"


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
async def bob(op):
    return await op.add_user("bob", PASSWORD)


@pytest.fixture
async def rp(op):
    relying_party = op.rp(await op.add_client("rp"))
    await relying_party.discover()
    return relying_party


def url(rp, scope: str = "openid profile", **extra: str) -> str:
    """A fresh authorization URL of rp, with extra parameters."""
    base = rp.authorization_url(scope)
    return base + ("&" + urlencode(extra) if extra else "")


async def sign_in(browser, rp, username: str = "alice") -> dict:
    """Run a full flow and return the validated ID token claims."""
    reply = await browser.authorize(url(rp), username, PASSWORD)
    token = await rp.redeem(reply.headers["Location"])
    return await rp.validate_id_token(token["id_token"])


def redirect_params(response) -> dict[str, str]:
    assert response.status == 302
    return query_of(response.headers["Location"])


def asks_for_login(response) -> bool:
    return response.status == 302 and response.headers["Location"].startswith("/login")


async def log_in_at(browser, response, username: str = "alice"):
    """Fill in the login form that `response` redirects to."""
    page = await browser.get(browser.base + response.headers["Location"])
    form = hidden_inputs(await page.text())
    form.update({"username": username, "password": PASSWORD})
    return await browser.post_form(browser.base + "/login", form)


def make_hint(op, signing_jwks: bytes, sub: str, lifetime: int) -> str:
    """An ID token for sub signed with the OP's keys; lifetime may be negative."""
    keyjar = KeyJar()
    keyjar.import_jwks_as_json(signing_jwks.decode(), op.url)
    signer = JWT(keyjar, iss=op.url, sign_alg="RS256")
    now = int(time.time())
    return signer.pack(
        {"sub": sub, "aud": ["rp"], "iat": now - 3600, "exp": now + lifetime},
        issuer_id=op.url,
    )


# -- prompt=none --


async def test_prompt_none_combined_is_invalid(op, browser, rp, alice):
    await sign_in(browser, rp)

    response = await browser.get(url(rp, prompt="none login"))

    params = redirect_params(response)
    assert params["error"] == "invalid_request"
    assert params["state"] == rp.state


async def test_prompt_none_with_old_login_requires_login(op, browser, rp, alice):
    await sign_in(browser, rp)
    await asyncio.sleep(1.1)  # auth_time has a resolution of one second

    response = await browser.get(url(rp, prompt="none", max_age="0"))

    assert redirect_params(response)["error"] == "login_required"


async def test_prompt_none_issues_code_with_session(op, browser, rp, alice):
    await sign_in(browser, rp)

    response = await browser.get(url(rp, prompt="none"))

    assert "code" in redirect_params(response)


async def test_unknown_prompt_value_is_invalid(op, browser, rp, alice):
    response = await browser.get(url(rp, prompt="popup"))

    assert redirect_params(response)["error"] == "invalid_request"


# -- prompt=login and select_account --


async def test_prompt_login_shows_form_then_issues_code(op, browser, rp, alice):
    first = await sign_in(browser, rp)
    await asyncio.sleep(1.1)  # auth_time has a resolution of one second

    forced = await browser.get(url(rp, prompt="login"))
    assert asks_for_login(forced)
    reply = await log_in_at(browser, forced)

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == alice.sub
    assert claims["iat"] > first["iat"]


async def test_select_account_switches_user(op, browser, rp, alice, bob):
    await sign_in(browser, rp, "alice")

    selecting = await browser.get(url(rp, prompt="select_account"))
    assert asks_for_login(selecting)
    reply = await log_in_at(browser, selecting, "bob")

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == bob.sub


async def test_select_account_with_none_is_invalid(op, browser, rp, alice):
    response = await browser.get(url(rp, prompt="none select_account"))

    assert redirect_params(response)["error"] == "invalid_request"


# -- max_age and auth_time --


async def test_max_age_exceeded_forces_login(op, browser, rp, alice):
    await sign_in(browser, rp)
    await asyncio.sleep(1.1)  # auth_time has a resolution of one second

    response = await browser.get(url(rp, max_age="1"))

    assert asks_for_login(response)


async def test_max_age_within_limit_reuses_login(op, browser, rp, alice):
    await sign_in(browser, rp)

    response = await browser.get(url(rp, max_age="3600"))

    assert "code" in redirect_params(response)


async def test_max_age_zero_login_issues_code(op, browser, rp, alice):
    first = await browser.get(url(rp, max_age="0"))
    assert asks_for_login(first)

    # The login just made satisfies max_age=0, so no second form is shown.
    reply = await log_in_at(browser, first)

    assert "code" in redirect_params(reply)


async def test_auth_time_present_with_max_age(op, browser, rp, alice):
    before = int(time.time())
    reply = await browser.authorize(url(rp, max_age="600"), "alice", PASSWORD)

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])

    assert before <= claims["auth_time"] <= int(time.time())


async def test_auth_time_absent_without_max_age(op, browser, rp, alice):
    claims = await sign_in(browser, rp)

    assert "auth_time" not in claims


async def test_auth_time_present_when_client_requires(op, browser, alice):
    client = await op.add_client("strict", require_auth_time=True)
    rp = op.rp(client)
    await rp.discover()

    claims = await sign_in(browser, rp)

    assert isinstance(claims["auth_time"], int)


async def test_auth_time_kept_after_refresh(op, browser, rp, alice):
    reply = await browser.authorize(
        url(rp, "openid profile email offline_access", max_age="600"), "alice", PASSWORD
    )
    token = await rp.redeem(reply.headers["Location"])

    refreshed = await rp.refresh(token["refresh_token"])
    claims = await rp.validate_id_token(refreshed["id_token"])

    assert isinstance(claims["auth_time"], int)


# -- acr and amr --


async def test_id_token_carries_amr_and_acr(op, browser, rp, alice):
    claims = await sign_in(browser, rp)

    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == ACR_PASSWORD


async def test_unsupported_acr_values_ignored(op, browser, rp, alice):
    reply = await browser.authorize(
        url(rp, acr_values="urn:example:mfa"), "alice", PASSWORD
    )

    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["acr"] == ACR_PASSWORD


async def test_discovery_lists_password_acr(op, rp):
    assert rp.metadata["acr_values_supported"] == [ACR_PASSWORD]


# -- login_hint --


async def test_login_hint_prefills_username(op, browser, rp, alice):
    response = await browser.get(url(rp, login_hint="alice@example.org"))
    assert asks_for_login(response)

    page = await browser.get(op.url + response.headers["Location"])

    assert 'value="alice@example.org"' in await page.text()


# -- id_token_hint --


async def test_id_token_hint_of_user_issues_code(op, browser, rp, alice, signing_jwks):
    await sign_in(browser, rp)
    hint = make_hint(op, signing_jwks, alice.sub, 300)

    response = await browser.get(url(rp, prompt="none", id_token_hint=hint))

    assert "code" in redirect_params(response)


async def test_expired_id_token_hint_accepted(op, browser, rp, alice, signing_jwks):
    await sign_in(browser, rp)
    hint = make_hint(op, signing_jwks, alice.sub, -3000)

    response = await browser.get(url(rp, prompt="none", id_token_hint=hint))

    assert "code" in redirect_params(response)


async def test_id_token_hint_from_real_token(op, browser, rp, alice):
    reply = await browser.authorize(url(rp), "alice", PASSWORD)
    token = await rp.redeem(reply.headers["Location"])

    response = await browser.get(
        url(rp, prompt="none", id_token_hint=token["id_token"])
    )

    assert "code" in redirect_params(response)


async def test_id_token_hint_other_user_requires_login(
    op, browser, rp, alice, bob, signing_jwks
):
    await sign_in(browser, rp, "alice")
    hint = make_hint(op, signing_jwks, bob.sub, 300)

    response = await browser.get(url(rp, prompt="none", id_token_hint=hint))

    assert redirect_params(response)["error"] == "login_required"


async def test_id_token_hint_other_user_shows_login(
    op, browser, rp, alice, bob, signing_jwks
):
    await sign_in(browser, rp, "alice")
    hint = make_hint(op, signing_jwks, bob.sub, 300)

    response = await browser.get(url(rp, id_token_hint=hint))

    assert asks_for_login(response)


async def test_id_token_hint_bad_signature_is_invalid(
    op, browser, rp, alice, signing_jwks
):
    await sign_in(browser, rp)
    hint = make_hint(op, signing_jwks, alice.sub, 300)
    header, payload, signature = hint.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"

    response = await browser.get(url(rp, prompt="none", id_token_hint=tampered))

    assert redirect_params(response)["error"] == "invalid_request"


async def test_id_token_hint_garbage_is_invalid(op, browser, rp, alice):
    response = await browser.get(url(rp, prompt="none", id_token_hint="not-a-jwt"))

    assert redirect_params(response)["error"] == "invalid_request"


async def test_unsigned_id_token_hint_is_invalid(op, browser, rp, alice):
    unsigned = JWT(KeyJar(), iss=op.url, sign_alg="none", sign=False).pack(
        {"sub": alice.sub}
    )

    response = await browser.get(url(rp, prompt="none", id_token_hint=unsigned))

    assert redirect_params(response)["error"] == "invalid_request"


# -- request objects and registration (OIDC Core 6, 7.2.1) --


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
)
async def test_unsupported_parameter_error(op, browser, rp, name, error):
    response = await browser.get(url(rp, **{name: "eyJhbGciOiJub25lIn0.e30."}))

    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == rp.state
