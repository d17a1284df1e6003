"""A minimal relying party for trying porchlight_op by hand.

Run `porchlight-op demo` in one terminal, then in another:

    .venv/bin/python examples/demo_rp.py --secret <client_secret from demo>

and open http://localhost:9000/ in a browser. It sends you to the OP, and on
return shows the ID token claims and the userinfo response. It uses Authlib,
independent of the OP's own libraries, and keeps its state in memory: it is a
demonstration, not a pattern for production.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets

import httpx
from aiohttp import web
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

PENDING: web.AppKey[dict[str, dict[str, str]]] = web.AppKey("pending")
CONFIG: web.AppKey[argparse.Namespace] = web.AppKey("config")
METADATA: web.AppKey[dict[str, str]] = web.AppKey("metadata")


def _client(config: argparse.Namespace) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=config.client_id,
        client_secret=config.secret,
        redirect_uri=f"http://localhost:{config.port}/callback",
        scope="openid profile email offline_access",
        code_challenge_method="S256",
    )


async def start(request: web.Request) -> web.Response:
    """Send the browser to the OP with state, nonce and a PKCE challenge."""
    config, metadata = request.app[CONFIG], request.app[METADATA]
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    async with _client(config) as client:
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
        )
    request.app[PENDING][state] = {"verifier": verifier, "nonce": nonce}
    raise web.HTTPFound(url)


async def callback(request: web.Request) -> web.Response:
    """Redeem the code, validate the ID token and call userinfo."""
    config, metadata = request.app[CONFIG], request.app[METADATA]
    if "error" in request.query:
        return _page("The OP returned an error", dict(request.query))
    pending = request.app[PENDING].pop(request.query.get("state", ""), None)
    if pending is None:
        return _page("Unknown state", {"hint": "start again at /"})

    async with _client(config) as client:
        token = await client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=str(request.url),
            code_verifier=pending["verifier"],
        )
        userinfo = (await client.get(metadata["userinfo_endpoint"])).json()
    async with httpx.AsyncClient() as http:
        keys = (await http.get(metadata["jwks_uri"])).json()

    claims = jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(keys),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": config.issuer}},
        claims_params={"nonce": pending["nonce"], "client_id": config.client_id},
    )
    claims.validate()
    return _page("Signed in", {"id_token_claims": dict(claims), "userinfo": userinfo})


def _page(title: str, data: object) -> web.Response:
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return web.Response(
        text=f"<h1>{html.escape(title)}</h1><pre>{html.escape(body)}</pre>"
        '<p><a href="/">Sign in again</a></p>',
        content_type="text/html",
    )


async def _discover(app: web.Application) -> None:
    config = app[CONFIG]
    async with httpx.AsyncClient() as http:
        reply = await http.get(config.issuer + "/.well-known/openid-configuration")
        app[METADATA] = reply.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--issuer", default="http://localhost:8080", help="the OP's issuer URL"
    )
    parser.add_argument("--client-id", default="demo-rp", help="this RP's client id")
    parser.add_argument(
        "--secret",
        default=os.environ.get("DEMO_RP_SECRET"),
        help="the demo client's secret (or set DEMO_RP_SECRET, which stays out "
        "of the process list)",
    )
    parser.add_argument("--port", type=int, default=9000, help="port to listen on")
    config = parser.parse_args()
    if not config.secret:
        parser.error("give the client secret with --secret or DEMO_RP_SECRET")

    app = web.Application()
    app[CONFIG] = config
    app[PENDING] = {}
    app.on_startup.append(_discover)
    app.router.add_get("/", start)
    app.router.add_get("/callback", callback)
    web.run_app(app, host="127.0.0.1", port=config.port)


if __name__ == "__main__":
    main()
