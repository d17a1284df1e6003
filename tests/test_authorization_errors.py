"""Authorization endpoint: which failures redirect to the client, and how.

Once the client and its redirect_uri check out, errors go back to that
redirect_uri with `state` and `iss` (RFC 6749 4.1.2.1, RFC 9207). Until then
the user sees an HTML page and is never redirected.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from support import REDIRECT_URI, pkce_pair, query_of
from yarl import URL

PASSWORD = "correct horse battery"
STATE = "state-4f1c"
METHODS = ["GET", "POST"]


def auth_params(client_id: str = "rp", **changes: str | None) -> dict[str, str]:
    """Build a valid authorization request with PKCE. A None value drops a parameter."""
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": STATE,
        "nonce": "nonce-9a2b",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {name: value for name, value in params.items() if value is not None}


async def send(op, browser, method, params):
    """Send an authorization request by GET (query) or POST (form body)."""
    url = op.url + "/authorization"
    if method == "GET":
        return await browser.get(url + "?" + urlencode(params))
    return await browser.post_form(url, params)


async def send_raw_query(op, browser, query):
    """Send GET /authorization with the query string exactly as written."""
    url = URL(op.url + "/authorization?" + query, encoded=True)
    response = await browser.session.get(url, allow_redirects=False)
    await response.read()
    return response


def client_error(response) -> dict[str, str]:
    """Return the query of a redirect to the registered redirect_uri."""
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return query_of(location)


async def assert_error_page(response) -> None:
    assert response.status == 400
    assert response.content_type == "text/html"
    assert "Location" not in response.headers
    assert "Traceback" not in await response.text()


def asks_for_login(response) -> bool:
    return response.status == 302 and response.headers["Location"].startswith(
        "/login?request="
    )


@pytest.fixture
async def rp(op):
    return await op.add_client("rp")


@pytest.fixture
async def alice(op):
    return await op.add_user("alice", PASSWORD)


# -- response_type --


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("response_type", ["token", "code id_token"])
async def test_non_code_response_type_rejected(op, browser, rp, method, response_type):
    params = auth_params(response_type=response_type)

    response = await send(op, browser, method, params)

    assert client_error(response)["error"] == "unsupported_response_type"


@pytest.mark.parametrize("method", METHODS)
async def test_missing_response_type_rejected(op, browser, rp, method):
    response = await send(op, browser, method, auth_params(response_type=None))

    assert client_error(response)["error"] == "invalid_request"


# -- PKCE (RFC 7636) --


@pytest.mark.parametrize("method", METHODS)
async def test_public_client_without_pkce_rejected(op, browser, method):
    await op.add_client("native", auth_method="none")
    params = auth_params("native", code_challenge=None, code_challenge_method=None)

    response = await send(op, browser, method, params)

    error = client_error(response)
    assert error["error"] == "invalid_request"
    assert error["state"] == STATE


@pytest.mark.parametrize("method", METHODS)
async def test_public_client_with_pkce_accepted(op, browser, method):
    await op.add_client("native", auth_method="none")

    response = await send(op, browser, method, auth_params("native"))

    assert asks_for_login(response)


@pytest.mark.parametrize("method", METHODS)
async def test_confidential_client_with_pkce_accepted(op, browser, rp, method):
    response = await send(op, browser, method, auth_params())

    assert asks_for_login(response)


@pytest.mark.parametrize("method", METHODS)
async def test_confidential_client_without_pkce_accepted(op, browser, rp, method):
    params = auth_params(code_challenge=None, code_challenge_method=None)

    response = await send(op, browser, method, params)

    assert asks_for_login(response)


@pytest.mark.parametrize("method", METHODS)
async def test_plain_challenge_method_rejected(op, browser, rp, method):
    params = auth_params(code_challenge="x" * 43, code_challenge_method="plain")

    response = await send(op, browser, method, params)

    assert client_error(response)["error"] == "invalid_request"


@pytest.mark.parametrize("method", METHODS)
async def test_challenge_without_method_rejected(op, browser, rp, method):
    response = await send(op, browser, method, auth_params(code_challenge_method=None))

    assert client_error(response)["error"] == "invalid_request"


# -- state, iss and nonce --


async def test_state_and_iss_on_success(op, browser, rp, alice):
    url = op.url + "/authorization?" + urlencode(auth_params())

    response = await browser.authorize(url, "alice", PASSWORD)

    params = client_error(response)
    assert "code" in params
    assert params["state"] == STATE
    assert params["iss"] == op.url


@pytest.mark.parametrize("method", METHODS)
async def test_state_and_iss_on_error(op, browser, rp, method):
    response = await send(op, browser, method, auth_params(scope="profile"))

    params = client_error(response)
    assert params["error"] == "invalid_scope"
    assert params["state"] == STATE
    assert params["iss"] == op.url


async def test_error_without_state_has_iss(op, browser, rp):
    response = await send(op, browser, "GET", auth_params(state=None, scope="email"))

    params = client_error(response)
    assert "state" not in params
    assert params["iss"] == op.url


async def test_nonce_in_id_token(op, browser, rp, alice):
    relying_party = op.rp(rp)
    await relying_party.discover()

    response = await browser.authorize(
        relying_party.authorization_url(), "alice", PASSWORD
    )
    token = await relying_party.redeem(response.headers["Location"])

    claims = await relying_party.validate_id_token(token["id_token"])
    assert claims["nonce"] == relying_party.nonce


# -- unsupported parameters and scope --


@pytest.mark.parametrize("method", METHODS)
async def test_request_object_not_supported(op, browser, rp, method):
    params = auth_params(request="eyJhbGciOiJub25lIn0.e30.")

    response = await send(op, browser, method, params)

    params = client_error(response)
    assert params["error"] == "request_not_supported"
    assert params["state"] == STATE


@pytest.mark.parametrize("method", METHODS)
async def test_request_uri_not_supported(op, browser, rp, method):
    params = auth_params(request_uri="urn:example:request-1")

    response = await send(op, browser, method, params)

    params = client_error(response)
    assert params["error"] == "request_uri_not_supported"
    assert params["iss"] == op.url


@pytest.mark.parametrize("method", METHODS)
async def test_scope_without_openid_rejected(op, browser, rp, method):
    response = await send(op, browser, method, auth_params(scope="profile email"))

    assert client_error(response)["error"] == "invalid_scope"


# -- prompt and max_age (OIDC Core 3.1.2.1) --


@pytest.mark.parametrize("method", METHODS)
async def test_prompt_none_without_login(op, browser, rp, method):
    response = await send(op, browser, method, auth_params(prompt="none"))

    params = client_error(response)
    assert params["error"] == "login_required"
    assert params["state"] == STATE
    assert params["iss"] == op.url


async def test_prompt_none_with_login_issues_code(op, browser, rp, alice):
    first = op.url + "/authorization?" + urlencode(auth_params())
    await browser.authorize(first, "alice", PASSWORD)

    response = await send(op, browser, "GET", auth_params(prompt="none"))

    assert "code" in client_error(response)


async def test_prompt_login_forces_form(op, browser, rp, alice):
    first = op.url + "/authorization?" + urlencode(auth_params())
    signed_in = await browser.authorize(first, "alice", PASSWORD)
    assert "code" in client_error(signed_in)

    response = await send(op, browser, "GET", auth_params(prompt="login"))

    assert asks_for_login(response)


async def test_max_age_zero_forces_form(op, browser, rp, alice):
    first = op.url + "/authorization?" + urlencode(auth_params())
    signed_in = await browser.authorize(first, "alice", PASSWORD)
    assert "code" in client_error(signed_in)

    response = await send(op, browser, "GET", auth_params(max_age="0"))

    assert asks_for_login(response)


# -- client and redirect_uri checks: an HTML page, never a redirect --


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"client_id": "nobody"}, id="unknown-client"),
        pytest.param({"client_id": None}, id="missing-client"),
        pytest.param({"redirect_uri": None}, id="missing-redirect-uri"),
        pytest.param(
            {"redirect_uri": "https://attacker.example/cb"}, id="unregistered"
        ),
        pytest.param({"redirect_uri": REDIRECT_URI + "/"}, id="trailing-slash"),
        pytest.param(
            {"redirect_uri": REDIRECT_URI.replace("callback", "Callback")},
            id="path-case",
        ),
        pytest.param({"redirect_uri": REDIRECT_URI + "?x=1"}, id="extra-query"),
    ],
)
async def test_unverified_client_gets_page(op, browser, rp, method, changes):
    response = await send(op, browser, method, auth_params(**changes))

    await assert_error_page(response)


async def test_unverified_client_outranks_other_errors(op, browser, rp):
    params = auth_params(client_id="nobody", response_type="token", scope="x")

    response = await send(op, browser, "GET", params)

    await assert_error_page(response)


# -- loopback redirect URIs of native apps (RFC 8252 7.3) --


@pytest.fixture
async def native(op):
    return await op.add_client(
        "native", auth_method="none", redirect_uris=("http://127.0.0.1/cb",)
    )


async def test_loopback_any_port_accepted(op, browser, native):
    redirect_uri = "http://127.0.0.1:54321/cb"
    params = auth_params("native", redirect_uri=redirect_uri, scope="email")

    response = await send(op, browser, "GET", params)

    location = response.headers["Location"]
    assert urlsplit(location).netloc == "127.0.0.1:54321"
    assert query_of(location)["error"] == "invalid_scope"


async def test_loopback_any_port_reaches_login(op, browser, native):
    params = auth_params("native", redirect_uri="http://127.0.0.1:54321/cb")

    response = await send(op, browser, "GET", params)

    assert asks_for_login(response)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("http://localhost:54321/cb", id="localhost"),
        pytest.param("https://127.0.0.1:54321/cb", id="https"),
        pytest.param("http://127.0.0.1:54321/cb/other", id="other-path"),
    ],
)
async def test_loopback_rule_is_narrow(op, browser, native, redirect_uri):
    params = auth_params("native", redirect_uri=redirect_uri)

    response = await send(op, browser, "GET", params)

    await assert_error_page(response)


# -- malformed input --


def raw_query(params: dict[str, str], extra: str) -> str:
    return urlencode(params) + "&" + extra


async def test_bad_percent_encoding_redirects(op, browser, rp):
    params = auth_params(nonce=None)

    response = await send_raw_query(op, browser, raw_query(params, "nonce=%zz"))

    assert client_error(response)["error"] == "invalid_request"


async def test_invalid_utf8_redirects(op, browser, rp):
    params = auth_params(nonce=None)

    response = await send_raw_query(op, browser, raw_query(params, "nonce=%ff"))

    assert client_error(response)["error"] == "invalid_request"


async def test_bad_encoding_in_client_id_gets_page(op, browser, rp):
    params = auth_params(client_id=None)

    response = await send_raw_query(op, browser, raw_query(params, "client_id=rp%zz"))

    await assert_error_page(response)


async def test_invalid_utf8_in_redirect_uri_gets_page(op, browser, rp):
    params = auth_params(redirect_uri=None)
    extra = "redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback%ff"

    response = await send_raw_query(op, browser, raw_query(params, extra))

    await assert_error_page(response)


@pytest.mark.parametrize("method", METHODS)
async def test_repeated_client_id_gets_page(op, browser, rp, method):
    body = raw_query(auth_params(), "client_id=rp")

    if method == "GET":
        response = await send_raw_query(op, browser, body)
    else:
        response = await browser.session.post(
            op.url + "/authorization",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )

    await assert_error_page(response)


@pytest.mark.parametrize("method", METHODS)
async def test_repeated_scope_redirects(op, browser, rp, method):
    body = raw_query(auth_params(), "scope=openid")

    if method == "GET":
        response = await send_raw_query(op, browser, body)
    else:
        response = await browser.session.post(
            op.url + "/authorization",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )

    params = client_error(response)
    assert params["error"] == "invalid_request"
    assert params["iss"] == op.url


async def test_post_with_json_body_gets_page(op, browser, rp):
    response = await browser.session.post(
        op.url + "/authorization", json=auth_params(), allow_redirects=False
    )

    await assert_error_page(response)
