"""Pages that are neither protocol endpoints nor the login form."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from .keys import SETTINGS


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, object]:
    """GET /: what this server is, for a person who lands here."""
    return {"issuer": request.app[SETTINGS].issuer}
