"""Test helpers: a scripted browser and a relying party built on Authlib.

The browser is a plain aiohttp client with its own cookie jar that reads the
login form and posts it, as a person's browser would. The relying party uses
Authlib, an OAuth library independent of idpyoidc, to build authorization
URLs, redeem codes and validate ID tokens against the published JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import aiohttp
import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

REDIRECT_URI = "http://127.0.0.1:9000/callback"
_INPUT = re.compile(r'<input[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<value>[^"]*)"')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, challenge


def hidden_inputs(html: str) -> dict[str, str]:
    """The named inputs with a value attribute in a page."""
    return {m["name"]: unescape(m["value"]) for m in _INPUT.finditer(html)}


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect, one value each."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic_auth(client_id: str, secret: str) -> str:
    """An HTTP Basic header value with RFC 6749 2.3.1 form-encoding."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


@dataclass
class Browser:
    """A user agent that follows the OP's pages but stops at the client."""

    session: aiohttp.ClientSession
    base: str

    @classmethod
    def open(cls, base: str) -> Browser:
        jar = aiohttp.CookieJar(unsafe=True)
        return cls(aiohttp.ClientSession(cookie_jar=jar), base)

    async def close(self) -> None:
        await self.session.close()

    async def get(self, url: str) -> aiohttp.ClientResponse:
        response = await self.session.get(url, allow_redirects=False)
        await response.read()
        return response

    async def post_form(self, url: str, data: dict[str, str]) -> aiohttp.ClientResponse:
        response = await self.session.post(url, data=data, allow_redirects=False)
        await response.read()
        return response

    async def authorize(
        self, url: str, username: str, password: str, consent: bool = True
    ) -> aiohttp.ClientResponse:
        """Start at the authorization URL, log in when asked; return the last reply.

        With `consent`, the browser submits allow on the consent page if it appears.
        That reply is the OP's redirect to the client, or the page it stopped on.
        """
        response = await self.get(url)
        if response.status != 302:
            return response
        location = response.headers["Location"]
        if location.startswith("/login"):
            page = await self.get(self.base + location)
            form = hidden_inputs(await page.text())
            form.update({"username": username, "password": password})
            response = await self.post_form(self.base + "/login", form)
        if consent:
            response = await self.allow_consent(response)
        return response

    async def allow_consent(
        self, response: aiohttp.ClientResponse
    ) -> aiohttp.ClientResponse:
        """Submit allow on the consent page, if `response` redirects to it."""
        return await self.answer_consent(response, "allow")

    async def answer_consent(
        self, response: aiohttp.ClientResponse, decision: str
    ) -> aiohttp.ClientResponse:
        """Post `decision` on the consent page, if `response` redirects to it."""
        location = response.headers.get("Location", "")
        if response.status != 302 or not location.startswith("/consent"):
            return response
        page = await self.get(self.base + location)
        form = hidden_inputs(await page.text())
        form["decision"] = decision
        return await self.post_form(self.base + "/consent", form)


@dataclass
class RelyingParty:
    """A client of the OP, driven through Authlib."""

    issuer: str
    client_id: str
    secret: str | None
    auth_method: str
    redirect_uri: str = REDIRECT_URI
    metadata: dict[str, Any] = field(default_factory=dict)
    verifier: str | None = None
    nonce: str | None = None
    state: str | None = None

    def oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.secret,
            token_endpoint_auth_method=self.auth_method,
            redirect_uri=self.redirect_uri,
            scope="openid profile email offline_access",
            code_challenge_method="S256",
        )

    async def discover(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            reply = await http.get(self.issuer + "/.well-known/openid-configuration")
            reply.raise_for_status()
            self.metadata = reply.json()
        return self.metadata

    def authorization_url(
        self, scope: str = "openid profile email offline_access"
    ) -> str:
        self.verifier, challenge = pkce_pair()
        self.nonce = secrets.token_urlsafe(16)
        self.state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return self.metadata["authorization_endpoint"] + "?" + urlencode(params)

    async def redeem(self, location: str) -> dict[str, Any]:
        """Exchange the code in a redirect through Authlib's client."""
        async with self.oauth() as client:
            token: dict[str, Any] = await client.fetch_token(
                self.metadata["token_endpoint"],
                authorization_response=location,
                code_verifier=self.verifier,
                state=self.state,
            )
        return token

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        async with self.oauth() as client:
            token: dict[str, Any] = await client.refresh_token(
                self.metadata["token_endpoint"], refresh_token=refresh_token
            )
        return token

    async def validate_id_token(self, id_token: str) -> dict[str, Any]:
        """Check signature, iss, aud, exp and nonce (OIDC Core 3.1.3.7)."""
        async with httpx.AsyncClient() as http:
            keys = (await http.get(self.metadata["jwks_uri"])).json()
        claims = jwt.decode(
            id_token,
            JsonWebKey.import_key_set(keys),
            claims_cls=CodeIDToken,
            claims_options={
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
            },
            claims_params={"nonce": self.nonce, "client_id": self.client_id},
        )
        claims.validate()
        return dict(claims)

    async def userinfo(self, access_token: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.get(
                self.metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {access_token}"},
            )
