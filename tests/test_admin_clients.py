"""The client administration pages, over HTTP with a management sign-in."""

from __future__ import annotations

from urllib.parse import quote

from admin_support import ADMIN, add_admin, post, sign_in_admin
from support import REDIRECT_URI, RelyingParty
from test_admin_users import hidden_value
from test_manage import PASSWORD

from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore

CLIENTS = ADMIN + "/clients"
APP_URI = "https://app.example.org/callback"


def new_client_form(**changes):
    form = {
        "client_id": "shop",
        "name": "Shop",
        "redirect_uris": f"{REDIRECT_URI}\n{APP_URI}",
        "post_logout_redirect_uris": "",
        "scope": "openid profile email",
        "auth_method": "client_secret_basic",
        "grant_types": "authorization_code",
    }
    form.update(changes)
    return form


async def cors_origins(op):
    members = await op.redis.smembers(keys.cors_origins())
    return {member.decode() for member in members}


async def signed_in(op, browser):
    await add_admin(op)
    await sign_in_admin(browser, op)


async def test_create_client_shows_secret_once(op, browser):
    await signed_in(op, browser)

    reply = await post(browser, op, CLIENTS + "/new", new_client_form())

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    secret = hidden_value(await reply.text(), "shown-once")
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.secret == secret
    assert stored.redirect_uris == (REDIRECT_URI, APP_URI)
    assert stored.scope == ("openid", "profile", "email")
    assert stored.grant_types == ("authorization_code",)
    show = await browser.get(op.url + CLIENTS + "/show?client_id=shop")
    assert secret not in await show.text()


async def test_created_client_signs_user_in(op, browser):
    await signed_in(op, browser)
    await op.add_user()
    reply = await post(browser, op, CLIENTS + "/new", new_client_form())
    secret = hidden_value(await reply.text(), "shown-once")
    rp = RelyingParty(op.url, "shop", secret, "client_secret_basic")
    await rp.discover()

    user_browser = type(browser).open(op.url)
    try:
        redirect = await user_browser.authorize(
            rp.authorization_url("openid profile email"), "alice", PASSWORD
        )
    finally:
        await user_browser.close()
    token = await rp.redeem(redirect.headers["Location"])

    claims = await rp.validate_id_token(token["id_token"])
    assert claims["aud"] == ["shop"] or claims["aud"] == "shop"


async def test_create_client_updates_cors(op, browser):
    await signed_in(op, browser)

    await post(browser, op, CLIENTS + "/new", new_client_form())

    assert "https://app.example.org" in await cors_origins(op)


async def test_create_public_client_without_secret(op, browser):
    await signed_in(op, browser)

    reply = await post(
        browser, op, CLIENTS + "/new", new_client_form(auth_method="none")
    )

    assert reply.status == 200
    assert 'id="shown-once"' not in await reply.text()
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.is_public
    assert stored.secret is None


INVALID_URIS = (
    ("javascript:alert(1)", "must not use the javascript: scheme"),
    ("data:text/html,x", "must not use the data: scheme"),
    ("https://*.example.org/cb", "must not contain a wildcard"),
    ("https://app.example.org/cb#frag", "must not contain a fragment"),
    ("/relative/callback", "must be an absolute URI"),
    ("https://app.example.org@evil.example/cb", "must not contain a user name"),
    ("https://app.example.org/" + "a" * 2000, "must be at most 2000 characters"),
)


async def test_invalid_redirect_uris_rejected(op, browser):
    await signed_in(op, browser)

    for uri, message in INVALID_URIS:
        reply = await post(
            browser, op, CLIENTS + "/new", new_client_form(redirect_uris=uri)
        )
        assert reply.status == 400, uri
        assert message in await reply.text(), uri
    assert await ClientStore(op.redis).get("shop") is None


async def test_invalid_client_id_rejected(op, browser):
    await signed_in(op, browser)

    reply = await post(
        browser, op, CLIENTS + "/new", new_client_form(client_id="a b{c}")
    )

    assert reply.status == 400
    assert "client id must be" in await reply.text()


async def test_create_without_grant_type_rejected(op, browser):
    await signed_in(op, browser)
    form = new_client_form()
    del form["grant_types"]

    reply = await post(browser, op, CLIENTS + "/new", form)

    assert reply.status == 400
    assert "at least one grant type" in await reply.text()


async def test_create_existing_id_rejected(op, browser):
    await signed_in(op, browser)
    await op.add_client("shop")

    reply = await post(browser, op, CLIENTS + "/new", new_client_form())

    assert reply.status == 409
    assert "already exists" in await reply.text()


async def test_create_management_id_rejected(op, browser):
    await signed_in(op, browser)
    before = await ClientStore(op.redis).get("porchlight-manage")

    reply = await post(
        browser, op, CLIENTS + "/new", new_client_form(client_id="porchlight-manage")
    )

    assert reply.status == 409
    assert await ClientStore(op.redis).get("porchlight-manage") == before


async def test_edit_redirect_uris_and_scope(op, browser):
    await signed_in(op, browser)
    await post(browser, op, CLIENTS + "/new", new_client_form())
    before = await ClientStore(op.redis).get("shop")

    reply = await post(
        browser,
        op,
        CLIENTS + "/edit",
        {
            "client_id": "shop",
            "redirect_uris": "https://new.example.org/cb",
            "post_logout_redirect_uris": "https://new.example.org/bye",
            "scope": "openid email",
            "auth_method": "client_secret_post",
        },
    )

    assert reply.status == 303
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None and before is not None
    assert stored.redirect_uris == ("https://new.example.org/cb",)
    assert stored.post_logout_redirect_uris == ("https://new.example.org/bye",)
    assert stored.scope == ("openid", "email")
    assert stored.auth_method == "client_secret_post"
    assert stored.secret == before.secret
    origins = await cors_origins(op)
    assert "https://new.example.org" in origins
    assert "https://app.example.org" not in origins


async def test_edit_invalid_uri_keeps_client(op, browser):
    await signed_in(op, browser)
    await post(browser, op, CLIENTS + "/new", new_client_form())

    reply = await post(
        browser,
        op,
        CLIENTS + "/edit",
        {
            "client_id": "shop",
            "redirect_uris": "javascript:alert(1)",
            "scope": "openid",
            "auth_method": "client_secret_basic",
        },
    )

    assert reply.status == 400
    assert "javascript: scheme" in await reply.text()
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.redirect_uris == (REDIRECT_URI, APP_URI)


async def test_edit_public_to_confidential_shows_secret(op, browser):
    await signed_in(op, browser)
    await op.add_client("spa", auth_method="none")

    reply = await post(
        browser,
        op,
        CLIENTS + "/edit",
        {
            "client_id": "spa",
            "redirect_uris": REDIRECT_URI,
            "scope": "openid",
            "auth_method": "client_secret_basic",
        },
    )

    assert reply.status == 200
    secret = hidden_value(await reply.text(), "shown-once")
    stored = await ClientStore(op.redis).get("spa")
    assert stored is not None
    assert stored.secret == secret


async def test_rotate_secret_replaces_it(op, browser):
    await signed_in(op, browser)
    await op.add_client("shop")
    confirm = await browser.get(op.url + CLIENTS + "/rotate?client_id=shop")
    assert confirm.status == 200

    reply = await post(
        browser, op, CLIENTS + "/rotate", {"client_id": "shop", "confirm": "yes"}
    )

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    secret = hidden_value(await reply.text(), "shown-once")
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.secret == secret
    assert secret != "s3cret-value"


async def test_delete_client_after_confirmation(op, browser):
    await signed_in(op, browser)
    await post(browser, op, CLIENTS + "/new", new_client_form())

    unconfirmed = await post(browser, op, CLIENTS + "/delete", {"client_id": "shop"})
    reply = await post(
        browser, op, CLIENTS + "/delete", {"client_id": "shop", "confirm": "yes"}
    )

    assert unconfirmed.status == 400
    assert reply.status == 200
    assert await ClientStore(op.redis).get("shop") is None
    assert "https://app.example.org" not in await cors_origins(op)


async def test_delete_management_client_refused(op, browser):
    await signed_in(op, browser)

    page = await browser.get(op.url + CLIENTS + "/delete?client_id=porchlight-manage")
    reply = await post(
        browser,
        op,
        CLIENTS + "/delete",
        {"client_id": "porchlight-manage", "confirm": "yes"},
    )

    assert page.status == 403
    assert reply.status == 403
    assert "cannot be changed or deleted" in await reply.text()
    assert await ClientStore(op.redis).get("porchlight-manage") is not None


async def test_management_client_shown_read_only(op, browser):
    await signed_in(op, browser)

    reply = await browser.get(op.url + CLIENTS + "/show?client_id=porchlight-manage")

    text = await reply.text()
    assert reply.status == 200
    assert 'id="read-only"' in text
    assert 'action="/manage/admin/clients/edit"' not in text


async def test_configured_client_shown_read_only(op, browser):
    await signed_in(op, browser)
    await op.add_client("from-file")
    await op.redis.sadd(keys.configured_clients(), "from-file")

    show = await browser.get(op.url + CLIENTS + "/show?client_id=from-file")
    reply = await post(
        browser,
        op,
        CLIENTS + "/rotate",
        {"client_id": "from-file", "confirm": "yes"},
    )

    assert "settings file" in await show.text()
    assert reply.status == 403
    stored = await ClientStore(op.redis).get("from-file")
    assert stored is not None
    assert stored.secret == "s3cret-value"


async def test_client_id_with_slash_reachable(op, browser):
    await signed_in(op, browser)
    await op.add_client("team/app")

    reply = await browser.get(
        op.url + CLIENTS + "/show?client_id=" + quote("team/app", safe="")
    )

    assert reply.status == 200
    assert "<h1>team/app</h1>" in await reply.text()


async def test_unknown_client_not_found(op, browser):
    await signed_in(op, browser)

    reply = await browser.get(op.url + CLIENTS + "/show?client_id=nope")

    assert reply.status == 404


async def test_edit_to_public_drops_secret(op, browser):
    await signed_in(op, browser)
    await op.add_client("shop")

    reply = await post(
        browser,
        op,
        CLIENTS + "/edit",
        {
            "client_id": "shop",
            "redirect_uris": REDIRECT_URI,
            "scope": "openid",
            "auth_method": "none",
        },
    )

    assert reply.status == 303
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.is_public
    assert stored.secret is None


async def test_edit_to_private_key_jwt_refused(op, browser):
    await signed_in(op, browser)
    await op.add_client("shop")

    reply = await post(
        browser,
        op,
        CLIENTS + "/edit",
        {
            "client_id": "shop",
            "redirect_uris": REDIRECT_URI,
            "scope": "openid",
            "auth_method": "private_key_jwt",
        },
    )

    assert reply.status == 400
    assert "porchlight-op client add" in await reply.text()
    stored = await ClientStore(op.redis).get("shop")
    assert stored is not None
    assert stored.auth_method == "client_secret_basic"


async def test_client_changes_logged_without_secret(op, browser, caplog):
    await signed_in(op, browser)
    caplog.set_level("INFO")

    created = await post(browser, op, CLIENTS + "/new", new_client_form())
    rotated = await post(
        browser, op, CLIENTS + "/rotate", {"client_id": "shop", "confirm": "yes"}
    )

    first = hidden_value(await created.text(), "shown-once")
    second = hidden_value(await rotated.text(), "shown-once")
    assert "event=admin_client_created" in caplog.text
    assert "event=admin_client_secret_rotated" in caplog.text
    assert first not in caplog.text
    assert second not in caplog.text


async def test_delete_client_forgets_consents(op, browser):
    await signed_in(op, browser)
    user = await op.add_user()
    await op.add_client("shop")
    await op.redis.sadd(keys.consent(user.sub, "shop"), "openid")

    await post(
        browser, op, CLIENTS + "/delete", {"client_id": "shop", "confirm": "yes"}
    )

    assert not await op.redis.exists(keys.consent(user.sub, "shop"))
