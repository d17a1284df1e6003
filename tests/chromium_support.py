"""Headless Chromium for the browser tests: launch, contexts, the OP on localhost.

Importing this module skips the importing test module when Playwright or
Chromium is missing, unless REQUIRE_BROWSER_TESTS=required (set in CI), which
turns the skip into a failure. The OP runs at http://localhost:<port> because
Chromium treats localhost as a secure context and runs WebAuthn there, but not
on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from conftest import OP, TEST_ARGON2
from support import free_port

from porchlight_op.app import create_app
from porchlight_op.settings import load_settings
from porchlight_op.store import keys

REQUIRED = os.environ.get("REQUIRE_BROWSER_TESTS") == "required"
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium")


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (REQUIRE_BROWSER_TESTS=required)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _find_chromium() -> str | None:
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


try:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        CDPSession,
        Frame,
        Page,
        Request,
        async_playwright,
        expect,
    )
    from playwright.async_api import Error as PlaywrightError
except ImportError:
    _skip_or_fail("playwright is not installed: pip install -e '.[test]'")

CHROMIUM = _find_chromium()
if CHROMIUM is None:
    _skip_or_fail("Chromium is not installed: apt-get install chromium")

__all__ = [
    "Browser",
    "BrowserContext",
    "CDPSession",
    "Frame",
    "Page",
    "PlaywrightError",
    "Request",
    "expect",
]

# Flags for a headless browser that stays on this machine. The resolver rule
# makes every host name fail without a DNS lookup, so Chromium's own update and
# sign-in requests go nowhere. It excludes localhost and 127.0.0.1, which the
# OP and the RP URLs use, because the rule also applies to IP literals.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
TIMEOUT_MS = 10_000  # for every Playwright wait; generous for a loaded machine
ERROR_PAGE = "chrome-error://"

NewContext = Callable[..., Awaitable[BrowserContext]]
Action = Callable[[], Awaitable[object]]


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Launch the system Chromium and close it on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        yield browser
        await browser.close()


@contextlib.asynccontextmanager
async def context_factory(chromium: Browser) -> AsyncIterator[NewContext]:
    """Yield a factory for browser contexts with our timeouts; close them on exit."""
    contexts: list[BrowserContext] = []

    async def create(**options: Any) -> BrowserContext:
        context = await chromium.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield create
    for context in contexts:
        await context.close()


@contextlib.asynccontextmanager
async def localhost_op(redis_server: str, signing_jwks: bytes) -> AsyncIterator[OP]:
    """Run the OP on a loopback HTTP server with http://localhost:<port> as issuer."""
    client = aioredis.from_url(redis_server)
    await client.flushdb()
    await client.set(keys.secret("signing-jwks"), signing_jwks)
    port = free_port()
    issuer = f"http://localhost:{port}"
    settings = load_settings(
        environ={}, overrides={"issuer": issuer, "port": port, **TEST_ARGON2}
    )
    app = create_app(settings, client)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield OP(issuer, settings, client, app)
    finally:
        await runner.cleanup()
        await client.aclose()


async def follow_to(page: Page, prefix: str, action: Action) -> str:
    """Run an action that ends at the RP; return the URL the browser requested.

    Route interception cannot stand in for the RP, because Playwright 1.65 did
    not route the redirected request to the RP here. The navigation to the closed
    port fails, so this waits for Chromium's error page before returning.
    """

    def at_prefix(request: Request) -> bool:
        return request.is_navigation_request() and request.url.startswith(prefix)

    def left_op(frame: Frame) -> bool:
        return frame == page.main_frame and frame.url.startswith((prefix, ERROR_PAGE))

    async with (
        page.expect_event("framenavigated", left_op, timeout=TIMEOUT_MS),
        page.expect_request(at_prefix, timeout=TIMEOUT_MS) as captured,
    ):
        try:
            await action()
        except PlaywrightError as exc:
            if "ERR_CONNECTION_REFUSED" not in exc.message:
                raise
    request = await captured.value
    return request.url
