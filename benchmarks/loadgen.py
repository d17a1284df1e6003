"""Closed-loop load generator for OpenID Providers on 127.0.0.1.

A fixed number of virtual clients each repeat one operation until a deadline,
and the latency of every completed operation is recorded. The operations are
protocol steps of the authorization code flow with PKCE (RFC 6749, RFC 7636,
OIDC Core 3.1) against any OP described by a Target: porchlight_op or the
reference node-oidc-provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

SCOPE = "openid profile email offline_access"
MAX_FLOW_STEPS = 10  # redirects and form posts in one authorization
ERROR_SAMPLES = 5  # distinct error messages kept per scenario

_FORM = re.compile(r"<form[^>]*>", re.IGNORECASE)
_FORM_BLOCK = re.compile(r"<form[^>]*>.*?</form>", re.IGNORECASE | re.DOTALL)
_ACTION = re.compile(r'action="([^"]*)"')
_INPUT = re.compile(r"<input[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'(name|value)="([^"]*)"')
_BUTTON = re.compile(r"<button[^>]*>", re.IGNORECASE)


class FlowError(RuntimeError):
    """An OP replied with something other than the next protocol step."""


@dataclass(frozen=True)
class Target:
    """An OP under test and the client registered with it."""

    name: str
    base: str
    client_id: str
    client_secret: str
    redirect_uri: str
    password: str
    usernames: tuple[str, ...]
    # Extra authorization parameters: node-oidc-provider drops offline_access
    # unless prompt=consent is present (OIDC Core 11).
    extra_params: tuple[tuple[str, str], ...] = ()
    endpoints: dict[str, str] = field(default_factory=dict)

    @property
    def basic_auth(self) -> str:
        """The client_secret_basic header value (RFC 6749 2.3.1)."""
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass
class Tokens:
    """One token response, kept by a virtual client."""

    access_token: str
    refresh_token: str


@dataclass
class Result:
    """Latencies and errors of one scenario run."""

    operations: int
    elapsed: float
    latencies: list[float]
    errors: Counter[str]

    @property
    def rate(self) -> float:
        """Completed operations per second."""
        return self.operations / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """Return the latency in ms below which `fraction` of operations fell."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return ordered[index] * 1000.0

    def summary(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "operations": self.operations,
            "elapsed_s": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(self.percentile(0.50), 2),
            "p90_ms": round(self.percentile(0.90), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "errors": sum(self.errors.values()),
            "error_samples": dict(self.errors.most_common(ERROR_SAMPLES)),
        }


Operation = Callable[[int], Awaitable[None]]


def install_uvloop() -> bool:
    """Use uvloop for new event loops when it is installed."""
    if uvloop is None:
        return False
    uvloop.install()
    return True


async def closed_loop(
    operation: Operation,
    concurrency: int,
    duration: float,
    stop: Callable[[], bool] = lambda: False,
) -> Result:
    """Run `concurrency` workers that repeat operation(worker) until the deadline."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    start = time.perf_counter()
    deadline = start + duration

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline and not stop():
            began = time.perf_counter()
            try:
                await operation(index)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                continue
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    return Result(len(latencies), elapsed, latencies, errors)


def pkce_pair() -> tuple[str, str]:
    """Generate a code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_fields(html: str) -> tuple[str | None, dict[str, str]]:
    """Return a form's action and its named inputs with their values.

    The form with a password field wins (the login page also has a passkey
    form, which a scripted login cannot use); otherwise the first form.
    """
    forms = _FORM_BLOCK.findall(html)
    if not forms:
        return None, {}
    html = next((f for f in forms if 'type="password"' in f), forms[0])
    action = _ACTION.search(_FORM.search(html).group(0))  # type: ignore[union-attr]
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attributes = dict(_ATTRIBUTE.findall(tag))
        if "name" in attributes:
            fields[attributes["name"]] = unescape(attributes.get("value", ""))
    # The first named button counts as pressed, as Enter in a browser would
    # send it: "Allow" on the consent page.
    for tag in _BUTTON.findall(html):
        attributes = dict(_ATTRIBUTE.findall(tag))
        if "name" in attributes:
            fields.setdefault(attributes["name"], unescape(attributes.get("value", "")))
            break
    return (unescape(action.group(1)) if action else ""), fields


class Client:
    """A relying party and a user agent for one Target, sharing one connector."""

    def __init__(self, target: Target, connector: aiohttp.BaseConnector) -> None:
        self.target = target
        self.connector = connector
        self.http = self.browser()

    def browser(self) -> aiohttp.ClientSession:
        """Open a session with its own cookie jar on the shared connector."""
        return aiohttp.ClientSession(
            connector=self.connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    async def close(self) -> None:
        await self.http.close()

    async def discover(self) -> None:
        """Fill target.endpoints from the discovery document."""
        url = self.target.base + "/.well-known/openid-configuration"
        async with self.http.get(url) as reply:
            reply.raise_for_status()
            metadata = await reply.json()
        for name in ("authorization", "token", "userinfo"):
            self.target.endpoints[name] = metadata[f"{name}_endpoint"]
        self.target.endpoints["jwks"] = metadata["jwks_uri"]

    def authorization_url(self) -> tuple[str, str]:
        """Build an authorization request URL and its PKCE verifier."""
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.target.client_id,
            "redirect_uri": self.target.redirect_uri,
            "scope": SCOPE,
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **dict(self.target.extra_params),
        }
        url = self.target.endpoints["authorization"] + "?" + urlencode(params)
        return url, verifier

    async def authorize(
        self, browser: aiohttp.ClientSession, username: str
    ) -> tuple[str, str]:
        """Follow redirects and submit login or consent forms.

        Returns the authorization code and its PKCE verifier.
        """
        url, verifier = self.authorization_url()
        method, data = "GET", None
        for _ in range(MAX_FLOW_STEPS):
            async with browser.request(
                method, url, data=data, allow_redirects=False
            ) as reply:
                body = await reply.text()
                location = reply.headers.get("Location")
                status = reply.status
            if status in (302, 303) and location:
                location = urljoin(url, location)
                if location.startswith(self.target.redirect_uri):
                    return self._code_from(location), verifier
                url, method, data = location, "GET", None
                continue
            action, fields = form_fields(body) if status == 200 else (None, {})
            if action is None:
                raise FlowError(f"{method} {urlsplit(url).path}: HTTP {status}")
            if "username" in fields or "password" in fields:
                fields.update(username=username, password=self.target.password)
            url, method, data = urljoin(url, action or url), "POST", fields
        raise FlowError(f"no code after {MAX_FLOW_STEPS} steps")

    @staticmethod
    def _code_from(location: str) -> str:
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            raise FlowError(f"authorization error {query.get('error')}")
        return query["code"][0]

    async def token(self, form: dict[str, str]) -> Tokens:
        """POST to the token endpoint with client_secret_basic."""
        headers = {"Authorization": self.target.basic_auth}
        url = self.target.endpoints["token"]
        async with self.http.post(url, data=form, headers=headers) as reply:
            body = await reply.json(content_type=None)
            if reply.status != 200:
                raise FlowError(f"token: HTTP {reply.status} {body.get('error')}")
        if "refresh_token" not in body:
            raise FlowError("token: no refresh_token in the response")
        return Tokens(body["access_token"], body["refresh_token"])

    async def redeem(self, code: str, verifier: str) -> Tokens:
        """Exchange an authorization code and its PKCE verifier for tokens."""
        return await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.target.redirect_uri,
                "code_verifier": verifier,
            }
        )

    async def refresh(self, tokens: Tokens) -> Tokens:
        """Use a refresh token once; the response carries its successor."""
        return await self.token(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )

    async def userinfo(self, access_token: str) -> None:
        headers = {"Authorization": f"Bearer {access_token}"}
        url = self.target.endpoints["userinfo"]
        async with self.http.get(url, headers=headers) as reply:
            body = await reply.json(content_type=None)
            if reply.status != 200 or "sub" not in body:
                raise FlowError(f"userinfo: HTTP {reply.status} {body.get('error')}")

    async def get_json(self, url: str) -> None:
        async with self.http.get(url) as reply:
            await reply.read()
            if reply.status != 200:
                raise FlowError(f"GET {urlsplit(url).path}: HTTP {reply.status}")

    async def full_login(self, username: str, with_userinfo: bool = True) -> Tokens:
        """Log in from a fresh cookie jar, redeem the code, call userinfo."""
        async with self.browser() as browser:
            code, verifier = await self.authorize(browser, username)
        tokens = await self.redeem(code, verifier)
        if with_userinfo:
            await self.userinfo(tokens.access_token)
        return tokens


async def login_flow(client: Client, concurrency: int, duration: float) -> Result:
    """Scenario 1: whole logins of distinct users, one fresh cookie jar each."""
    users = itertools.cycle(client.target.usernames)

    async def operation(_: int) -> None:
        await client.full_login(next(users))

    return await closed_loop(operation, concurrency, duration)


async def sso_browsers(
    client: Client, usernames: Sequence[str]
) -> list[aiohttp.ClientSession]:
    """Log each user in once and keep the browser, which then has an SSO session."""
    browsers = [client.browser() for _ in usernames]
    await asyncio.gather(
        *(client.authorize(b, u) for b, u in zip(browsers, usernames, strict=True))
    )
    return browsers


async def prepare_codes(
    client: Client,
    browsers: Sequence[aiohttp.ClientSession],
    usernames: Sequence[str],
    duration: float,
    limit: int,
) -> list[tuple[str, str]]:
    """Collect authorization codes through SSO sessions for up to `duration` s."""
    codes: list[tuple[str, str]] = []

    async def operation(index: int) -> None:
        codes.append(await client.authorize(browsers[index], usernames[index]))

    await closed_loop(operation, len(browsers), duration, lambda: len(codes) >= limit)
    return codes


async def code_redemption(
    client: Client, codes: list[tuple[str, str]], concurrency: int, duration: float
) -> Result:
    """Scenario 2: redeem prepared codes, each once, until time or codes run out."""
    pending = iter(codes)

    async def operation(_: int) -> None:
        await client.redeem(*next(pending))

    exhausted = len(codes)
    started = [0]

    def out_of_codes() -> bool:
        started[0] += 1
        return started[0] > exhausted

    return await closed_loop(operation, concurrency, duration, out_of_codes)


async def refresh_chains(
    client: Client, chains: list[Tokens], duration: float
) -> Result:
    """Scenario 3: each virtual client rotates its own refresh token chain."""

    async def operation(index: int) -> None:
        chains[index] = await client.refresh(chains[index])

    return await closed_loop(operation, len(chains), duration)


async def userinfo_calls(
    client: Client, access_tokens: Sequence[str], duration: float
) -> Result:
    """Scenario 4: userinfo with one access token per virtual client."""

    async def operation(index: int) -> None:
        await client.userinfo(access_tokens[index])

    return await closed_loop(operation, len(access_tokens), duration)


async def metadata_calls(client: Client, concurrency: int, duration: float) -> Result:
    """Scenario 5: discovery and JWKS, alternating; each GET is one operation."""
    urls = itertools.cycle(
        [
            client.target.base + "/.well-known/openid-configuration",
            client.target.endpoints["jwks"],
        ]
    )

    async def operation(_: int) -> None:
        await client.get_json(next(urls))

    return await closed_loop(operation, concurrency, duration)
