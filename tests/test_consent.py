"""The consent page and the remembered consent (OIDC Core 3.1.2.4)."""

from __future__ import annotations

import io
import sys
from urllib.parse import urlencode

import pytest
import redis
from support import hidden_inputs, query_of

from porchlight_op import cli
from porchlight_op.models import Client
from porchlight_op.settings import SettingsError, load_settings
from porchlight_op.store import keys

PASSWORD = "correct horse battery"


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


@pytest.fixture
async def rp(op):
    """A third-party client, whose users see the consent page."""
    relying_party = op.rp(await op.add_client("shop", first_party=False))
    await relying_party.discover()
    return relying_party


@pytest.fixture
async def own_rp(op):
    relying_party = op.rp(await op.add_client("own", first_party=True))
    await relying_party.discover()
    return relying_party


def url(rp, scope: str = "openid profile", **extra: str) -> str:
    base = rp.authorization_url(scope)
    return base + ("&" + urlencode(extra) if extra else "")


def asks_consent(response) -> bool:
    return response.status == 302 and response.headers["Location"].startswith(
        "/consent"
    )


async def log_in(browser, rp, scope: str = "openid profile", **extra: str):
    """Start a request and log in, stopping before any consent page."""
    return await browser.authorize(url(rp, scope, **extra), "alice", PASSWORD, False)


async def consent_page(browser, response) -> str:
    page = await browser.get(browser.base + response.headers["Location"])
    assert page.status == 200
    return await page.text()


# -- when the page appears --


async def test_third_party_client_asks_consent(op, browser, rp, alice):
    response = await log_in(browser, rp)

    assert asks_consent(response)


async def test_allow_issues_code(op, browser, rp, alice):
    response = await log_in(browser, rp)

    reply = await browser.allow_consent(response)

    params = query_of(reply.headers["Location"])
    assert "code" in params
    assert params["state"] == rp.state
    token = await rp.redeem(reply.headers["Location"])
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["amr"] == ["pwd"]


async def test_deny_returns_access_denied(op, browser, rp, alice):
    response = await log_in(browser, rp)

    reply = await browser.answer_consent(response, "deny")

    params = query_of(reply.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == rp.state
    assert params["iss"] == op.url


async def test_deny_remembers_nothing(op, browser, rp, alice):
    await browser.answer_consent(await log_in(browser, rp), "deny")

    response = await browser.get(url(rp))

    assert asks_consent(response)


async def test_granted_scopes_not_asked_again(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp))

    response = await browser.get(url(rp))

    assert "code" in query_of(response.headers["Location"])


async def test_fewer_scopes_not_asked_again(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp, "openid profile email"))

    response = await browser.get(url(rp, "openid email"))

    assert "code" in query_of(response.headers["Location"])


async def test_new_scope_asked_again(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp, "openid profile"))

    response = await browser.get(url(rp, "openid email"))

    assert asks_consent(response)


async def test_prompt_consent_forces_page(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp))

    response = await browser.get(url(rp, prompt="consent"))

    assert asks_consent(response)


async def test_prompt_consent_then_allow_issues_code(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp))

    reply = await browser.allow_consent(await browser.get(url(rp, prompt="consent")))

    assert "code" in query_of(reply.headers["Location"])


async def test_prompt_none_needing_consent_fails(op, browser, rp, alice):
    await browser.answer_consent(await log_in(browser, rp), "deny")

    response = await browser.get(url(rp, prompt="none"))

    params = query_of(response.headers["Location"])
    assert params["error"] == "consent_required"
    assert params["state"] == rp.state


async def test_consent_is_per_client(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp))
    other = op.rp(await op.add_client("other", first_party=False))
    await other.discover()

    response = await browser.get(url(other))

    assert asks_consent(response)


# -- first-party clients --


async def test_first_party_skips_consent(op, browser, own_rp, alice):
    response = await log_in(browser, own_rp, "openid profile email")

    assert "code" in query_of(response.headers["Location"])


async def test_first_party_offline_access_asked_once(op, browser, own_rp, alice):
    scope = "openid profile offline_access"
    first = await log_in(browser, own_rp, scope)
    assert asks_consent(first)
    await browser.allow_consent(first)

    again = await browser.get(url(own_rp, scope))

    assert "code" in query_of(again.headers["Location"])


async def test_toml_first_party_setting(tmp_path):
    config = tmp_path / "porchlight.toml"
    config.write_text(
        'issuer = "http://127.0.0.1:8080"\n'
        "[clients.own]\n"
        'redirect_uris = ["http://127.0.0.1:9000/callback"]\n'
        'secret = "a-long-enough-secret"\n'
        "first_party = true\n"
        "require_auth_time = true\n"
    )

    settings = load_settings(environ={"PORCHLIGHT_CONFIG": str(config)})

    assert settings.clients["own"].first_party is True
    assert settings.clients["own"].require_auth_time is True


async def test_toml_first_party_must_be_boolean(tmp_path):
    config = tmp_path / "porchlight.toml"
    config.write_text(
        'issuer = "http://127.0.0.1:8080"\n'
        "[clients.own]\n"
        'redirect_uris = ["http://127.0.0.1:9000/callback"]\n'
        'secret = "a-long-enough-secret"\n'
        'first_party = "yes"\n'
    )

    with pytest.raises(SettingsError, match=r"clients\.own\.first_party"):
        load_settings(environ={"PORCHLIGHT_CONFIG": str(config)})


def test_cli_client_add_first_party(redis_server, monkeypatch):
    sync_redis = redis.Redis.from_url(redis_server)
    sync_redis.delete(keys.client("own-cli"))
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    status = cli.main(
        [
            "client", "add", "own-cli",
            "--redirect-uri", "http://127.0.0.1:9000/callback",
            "--secret", "a-long-enough-secret",
            "--first-party",
        ]
    )  # fmt: skip

    assert status == 0
    stored = Client.from_json(sync_redis.get(keys.client("own-cli")))
    sync_redis.close()
    assert stored.first_party is True
    assert stored.require_auth_time is False


# -- the page and the form --


async def test_page_lists_scopes_in_words(op, browser, rp, alice):
    response = await log_in(browser, rp, "openid profile email offline_access")

    html = await consent_page(browser, response)

    assert "Your name, username, picture and other profile details" in html
    assert "Your email address and whether it is verified" in html
    assert "while you are not using the application" in html
    assert "shop" in html
    assert "alice" in html


async def test_page_works_without_javascript(op, browser, rp, alice):
    html = await consent_page(browser, await log_in(browser, rp))

    assert "<script" not in html
    assert 'method="post" action="/consent"' in html
    assert 'type="submit" name="decision" value="allow"' in html
    assert 'type="submit" name="decision" value="deny"' in html
    assert "autofocus" in html


async def test_submit_without_csrf_rejected(op, browser, rp, alice):
    html = await consent_page(browser, await log_in(browser, rp))
    form = hidden_inputs(html)
    form.update({"csrf_token": "forged", "decision": "allow"})

    reply = await browser.post_form(op.url + "/consent", form)

    assert reply.status == 403


async def test_submit_without_decision_rejected(op, browser, rp, alice):
    html = await consent_page(browser, await log_in(browser, rp))

    reply = await browser.post_form(op.url + "/consent", hidden_inputs(html))

    assert reply.status == 400


async def test_used_request_cannot_be_replayed(op, browser, rp, alice):
    html = await consent_page(browser, await log_in(browser, rp))
    form = {**hidden_inputs(html), "decision": "allow"}
    first = await browser.post_form(op.url + "/consent", form)
    assert "code" in query_of(first.headers["Location"])

    second = await browser.post_form(op.url + "/consent", form)

    assert second.status == 400
    assert "expired or was already used" in await second.text()


async def test_page_needs_the_same_login(op, browser, rp, alice):
    response = await log_in(browser, rp)
    other = type(browser).open(op.url)
    try:
        page = await other.get(op.url + response.headers["Location"])
    finally:
        await other.close()

    assert page.status == 400


async def test_unknown_request_id_rejected(op, browser, rp, alice):
    page = await browser.get(op.url + "/consent?request=nothing-here")

    assert page.status == 400


# -- storage --


async def test_consent_stored_with_user_hash_tag(op, browser, rp, alice):
    await browser.allow_consent(await log_in(browser, rp, "openid email"))

    key = keys.consent(alice.sub, "shop")
    members = {member.decode() for member in await op.redis.smembers(key)}
    assert key.startswith(f"pl:{{{alice.sub}}}:")
    assert members == {"openid", "email"}
    assert 0 < await op.redis.ttl(key) <= op.settings.consent_lifetime
