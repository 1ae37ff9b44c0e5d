"""The auth posture: a Bearer token (401) and a peer allow-list (403), each on when configured."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from shared.errors import send_error
from shared.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Orchestrator probes carry no token; /health says nothing but status and service name.
TOKEN_EXEMPT_PATHS = frozenset({"/health"})


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs as given; a bare address becomes a /32 or /128. Entries were validated when config loaded."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def peer_allowed(host: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, token: str = "", allowed_ips: Iterable[str] = ()) -> None:
        self.app = app
        self.expected = token.encode()
        self.networks = parse_networks(allowed_ips)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.expected and not self.networks):
            await self.app(scope, receive, send)
            return
        if self.networks:
            client = scope.get("client")
            if not peer_allowed(client[0] if client else None, self.networks):
                await send_error(send, "forbidden", "your address is not in auth.allowed_ips")
                return
        if self.expected and scope["path"] not in TOKEN_EXEMPT_PATHS:
            presented = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    presented = value
                    break
            scheme, _, credentials = presented.partition(b" ")
            # The scheme is case-insensitive (RFC 9110 §11.1); the token is compared in constant time.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.lstrip(b" "), self.expected):
                await send_error(send, "unauthorized", "missing or wrong Authorization: Bearer token")
                return
        await self.app(scope, receive, send)
