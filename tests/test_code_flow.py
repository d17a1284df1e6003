"""The authorization code flow end to end: browser, OP and an Authlib RP."""

from __future__ import annotations

import pytest
from support import query_of


@pytest.mark.parametrize(
    "auth_method", ["client_secret_basic", "client_secret_post", "none"]
)
async def test_code_flow_per_auth_method(op, browser, auth_method):
    client = await op.add_client(f"rp-{auth_method}", auth_method=auth_method)
    user = await op.add_user()
    rp = op.rp(client)
    await rp.discover()

    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    assert reply.status == 302
    location = reply.headers["Location"]
    params = query_of(location)
    assert params["state"] == rp.state
    assert params["iss"] == op.url

    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    assert claims["sub"] == user.sub
    assert claims["nonce"] == rp.nonce

    info = await rp.userinfo(token["access_token"])
    assert info.status_code == 200
    assert info.json()["email"] == "alice@example.org"
    assert info.json()["sub"] == user.sub

    refreshed = await rp.refresh(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    again = await rp.userinfo(refreshed["access_token"])
    assert again.status_code == 200
