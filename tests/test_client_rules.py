"""Redirect URI matching and client authentication, without HTTP."""

from __future__ import annotations

import base64

import pytest
from support import basic_auth

from porchlight_op.errors import InvalidClient, InvalidRequest
from porchlight_op.models import Client
from porchlight_op.oidc.clients import (
    authenticate,
    read_credentials,
    redirect_uri_matches,
)

ODD_SECRET = "a/b=c?d+e:f%g h"


def _client(auth_method: str = "client_secret_basic") -> Client:
    return Client(
        client_id="rp",
        redirect_uris=("https://rp.example/cb",),
        auth_method=auth_method,
        secret=None if auth_method == "none" else ODD_SECRET,
        scope=("openid",),
    )


@pytest.mark.parametrize(
    ("registered", "requested", "expected"),
    [
        ("https://rp.example/cb", "https://rp.example/cb", True),
        ("https://rp.example/cb", "https://rp.example/cb/", False),
        ("https://rp.example/cb", "https://RP.example/cb", False),
        ("https://rp.example/cb", "https://rp.example/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:54321/cb", True),
        ("http://[::1]/cb", "http://[::1]:54321/cb", True),
        ("http://127.0.0.1/cb", "http://localhost:54321/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:54321/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:54321/other", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", False),
        ("http://127.0.0.1/cb", "http://user@127.0.0.1:5000/cb", False),
        ("http://localhost/cb", "http://localhost:5000/cb", False),
    ],
)
def test_redirect_uri_matching(registered, requested, expected):
    assert redirect_uri_matches(registered, requested) is expected


def test_basic_secret_is_form_decoded():
    credentials = read_credentials({}, basic_auth("rp", ODD_SECRET))

    assert credentials.secret == ODD_SECRET
    assert authenticate(_client(), credentials).client_id == "rp"


def test_basic_secret_sent_without_form_encoding_is_accepted():
    raw = base64.b64encode(f"rp:{ODD_SECRET}".encode()).decode()

    credentials = read_credentials({}, f"Basic {raw}")

    assert authenticate(_client(), credentials).client_id == "rp"


def test_wrong_secret_is_rejected():
    credentials = read_credentials({}, basic_auth("rp", ODD_SECRET + "x"))

    with pytest.raises(InvalidClient):
        authenticate(_client(), credentials)


def test_post_secret_for_basic_client_is_rejected():
    credentials = read_credentials(
        {"client_id": "rp", "client_secret": ODD_SECRET}, None
    )

    with pytest.raises(InvalidClient):
        authenticate(_client(), credentials)


def test_credentials_in_header_and_body_are_rejected():
    with pytest.raises(InvalidRequest):
        read_credentials({"client_secret": "x"}, basic_auth("rp", ODD_SECRET))


def test_public_client_needs_no_secret():
    credentials = read_credentials({"client_id": "rp"}, None)

    assert authenticate(_client("none"), credentials).client_id == "rp"


def test_unknown_client_is_rejected():
    credentials = read_credentials({"client_id": "nobody"}, None)

    with pytest.raises(InvalidClient):
        authenticate(None, credentials)
