"""X-Forwarded-* headers, honoured only from the proxies the settings trust.

Behind a load balancer the peer address is the proxy's; the client's address
and the original scheme and host come from headers that anyone could send, so
they count only when the direct peer is a trusted proxy. The issuer never
follows these headers: it is fixed by the settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from .middlewares import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Turn the trusted_proxies setting into networks (a bare address is a /32)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_trusted(address: str | None, networks: Sequence[Network]) -> bool:
    """True when `address` lies in one of the networks."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, networks: Sequence[Network]
) -> str | None:
    """Return the first address, from the right, that is not a trusted proxy."""
    if not is_trusted(peer, networks) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def forwarded_headers(networks: Sequence[Network]) -> Middleware:
    """Build a middleware that applies X-Forwarded-* from trusted peers only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_trusted(request.remote, networks):
            return await handler(request)
        return await handler(forwarded_request(request, networks))

    return middleware


def forwarded_request(request: web.Request, networks: Sequence[Network]) -> web.Request:
    """Clone a request from a trusted proxy with its X-Forwarded-* values applied."""
    remote = client_address(
        request.remote, request.headers.get("X-Forwarded-For"), networks
    ) or str(request.remote)
    proto = _first(request.headers.get("X-Forwarded-Proto"))
    host = _first(request.headers.get("X-Forwarded-Host"))
    return request.clone(
        remote=remote,
        scheme=proto if proto in ("http", "https") else request.scheme,
        host=host or request.host,
    )


def _first(value: str | None) -> str | None:
    if value is None:
        return None
    return value.split(",")[0].strip().lower() or None
