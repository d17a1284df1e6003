"""Strict parsing of query strings and form bodies.

RFC 6749 3.1 forbids repeating a parameter, and a request with broken
percent-encoding or invalid UTF-8 must be rejected rather than guessed at.
aiohttp's own parsing is lenient on both counts, so requests are parsed here.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

MAX_FORM_BYTES = 64 * 1024
BODY_TIMEOUT = 10.0  # seconds to receive a whole form body
FORM_TYPE = "application/x-www-form-urlencoded"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class MalformedParameters(ValueError):
    """The query or body cannot be parsed as unique, UTF-8, form-encoded pairs.

    `params` contains what could be read unambiguously, so a caller can still
    verify the client before deciding between a redirect and an error page.
    """

    def __init__(self, problem: str, params: dict[str, str]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.params = params


def parse_pairs(raw: str) -> dict[str, str]:
    """Parse `a=1&b=2` strictly; parameters with empty values are dropped.

    OIDC Core 3.1.2.1 treats a parameter sent without a value as omitted.
    """
    params: dict[str, str] = {}
    problems: list[str] = []
    seen: set[str] = set()
    repeated: set[str] = set()
    for pair in raw.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        try:
            name, value = _decode(name), _decode(value)
        except ValueError as err:
            problems.append(str(err))
            continue
        if name in seen:
            repeated.add(name)
            params.pop(name, None)
            continue
        seen.add(name)
        if value:
            params[name] = value
    if repeated:
        problems.insert(0, "repeated parameter(s): " + ", ".join(sorted(repeated)))
    if problems:
        raise MalformedParameters("; ".join(problems), params)
    return params


def _decode(text: str) -> str:
    if text.isascii() and "%" not in text and "+" not in text:
        return text  # nothing is escaped
    if _BAD_ESCAPE.search(text):
        raise ValueError("malformed percent-encoding")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("parameter is not valid UTF-8") from None


def query_params(request: web.Request) -> dict[str, str]:
    """Parse the request's query string strictly."""
    return parse_pairs(request.rel_url.raw_query_string)


async def form_params(request: web.Request) -> dict[str, str]:
    """The request's form body, parsed strictly; the media type must be a form."""
    if request.content_type != FORM_TYPE:
        raise MalformedParameters(f"the body must be {FORM_TYPE}", {})
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise MalformedParameters("the body is too large", {})
    body = await _read_body(request)
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedParameters("the body is not form-encoded ASCII", {}) from None
    return parse_pairs(text)


async def _read_body(request: web.Request) -> bytes:
    """Read the whole body, chunked or not, up to MAX_FORM_BYTES and BODY_TIMEOUT."""
    content = request.content
    if content.is_eof() and content.total_bytes <= MAX_FORM_BYTES:
        # The whole body is buffered already, so there is nothing to wait for.
        return content.read_nowait()
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            while chunk := await request.content.read(MAX_FORM_BYTES):
                size += len(chunk)
                if size > MAX_FORM_BYTES:
                    raise MalformedParameters("the body is too large", {})
                chunks.append(chunk)
    except TimeoutError:
        raise MalformedParameters("the body did not arrive in time", {}) from None
    return b"".join(chunks)


async def posted_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """Return request.post(), raising MalformedParameters for a body it cannot decode.

    aiohttp raises UnicodeDecodeError for bytes that are not valid in the
    body's charset, and LookupError for an unknown charset.
    """
    try:
        return await request.post()
    except (ValueError, LookupError):
        raise MalformedParameters("the form body cannot be decoded", {}) from None
