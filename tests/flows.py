"""Steps that several test files repeat: sign in and out, token calls, the CLI."""

from __future__ import annotations

import io
import json
import sys
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from authlib.oauth2.rfc7523 import client_secret_jwt_sign, private_key_jwt_sign
from support import Browser, RelyingParty, hidden_inputs
from token_flow import post_form

from porchlight_op import cli
from porchlight_op.models import Client
from porchlight_op.store.clients import ClientStore

PASSWORD = "correct horse battery"
LOGOUT_URI = "http://127.0.0.1:9000/logged-out"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# -- sign in and out through a relying party --


async def add_logout_client(op: Any, client_id: str = "rp") -> Client:
    """Register a confidential client with LOGOUT_URI as its post-logout URI."""
    client = await op.add_client(client_id)
    client = Client(
        client_id=client.client_id,
        redirect_uris=client.redirect_uris,
        auth_method=client.auth_method,
        secret=client.secret,
        scope=client.scope,
        post_logout_redirect_uris=(LOGOUT_URI,),
    )
    await ClientStore(op.redis).put(client)
    return client


async def sign_in_rp(
    op: Any, browser: Browser, client: Client, username: str = "alice"
) -> tuple[RelyingParty, dict[str, Any]]:
    """Log the browser in through the code flow; return the RP and its tokens."""
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(rp.authorization_url(), username, PASSWORD)
    assert reply.status == 302
    token = await rp.redeem(reply.headers["Location"])
    return rp, token


async def sign_in_for_logout(
    op: Any, browser: Browser
) -> tuple[Client, RelyingParty, dict[str, Any]]:
    """Add alice and a logout client, sign alice in; return client, RP and tokens."""
    client = await add_logout_client(op)
    await op.add_user()
    rp, token = await sign_in_rp(op, browser, client)
    return client, rp, token


def logout_url(op: Any, **params: str) -> str:
    """Return the end_session endpoint URL with `params` in its query."""
    return f"{op.url}/logout?{urlencode(params)}"


async def authorize_status(browser: Browser, rp: RelyingParty) -> str:
    """Return where a new authorization request sends the browser: code or login."""
    reply = await browser.get(rp.authorization_url())
    location = reply.headers["Location"]
    return "login" if location.startswith("/login") else "code"


async def logout_form(
    browser: Browser, url: str, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Open a logout confirmation page; return its HTML and its form fields."""
    reply = await browser.session.get(url, headers=headers, allow_redirects=False)
    page = await reply.text()
    assert reply.status == 200
    return page, hidden_inputs(page)


# -- token management: introspection, revocation and refresh --


async def introspect(
    op: Any, client: Client, token: str, hint: str | None = None
) -> httpx.Response:
    """POST a token to /introspect as `client` (RFC 7662 2.1)."""
    form = {"token": token}
    if hint is not None:
        form["token_type_hint"] = hint
    return await post_form(op.url + "/introspect", form, client)


async def revoke(
    op: Any, client: Client, token: str, hint: str | None = None
) -> httpx.Response:
    """POST a token to /revoke as `client` (RFC 7009 2.1)."""
    form = {"token": token}
    if hint is not None:
        form["token_type_hint"] = hint
    return await post_form(op.url + "/revoke", form, client)


async def refresh(op: Any, client: Client, refresh_token: str) -> httpx.Response:
    """Send a refresh_token grant to /token as `client`."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await post_form(op.url + "/token", form, client)


# -- client assertions (RFC 7523 2.2) --


def jwks_of(*keys: Any) -> dict[str, Any]:
    """Return a JWK Set with the public parts of joserfc `keys`."""
    return {"keys": [key.as_dict(private=False) for key in keys]}


def key_assertion(
    op: Any,
    key: Any,
    client_id: str = "signed",
    alg: str = "ES256",
    audience: str | None = None,
    **options: Any,
) -> str:
    """Sign a private_key_jwt assertion, by default for the token endpoint."""
    return private_key_jwt_sign(
        key, client_id, audience or op.url + "/token", alg, **options
    )


def secret_assertion(op: Any, secret: str, client_id: str, **options: Any) -> str:
    """Sign a client_secret_jwt assertion for the token endpoint."""
    return client_secret_jwt_sign(secret, client_id, op.url + "/token", **options)


def assertion_form(assertion: str, **fields: str) -> dict[str, str]:
    """Return a form that authenticates with `assertion`, plus `fields`."""
    return {
        **fields,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


# -- the command line, run in-process --


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    """Run the CLI and return the exit status, stdout and stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_json(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> Any:
    """Run the CLI with --json, check that it succeeded; return the parsed output."""
    code, out, err = run_cli(capsys, *argv, "--json", stdin=stdin)
    assert code == 0, err
    return json.loads(out)
