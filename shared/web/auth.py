"""The auth posture: a Bearer token (401) and a peer allow-list (403), each on when configured."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorCode, LakehouseError, send_error

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Orchestrator probes carry no token; /health says nothing but status and service name.
TOKEN_EXEMPT_PATHS = frozenset({"/health"})
# A websocket handshake is an HTTP request too: it meets the same rules as any other.
GUARDED_SCOPES = frozenset({"http", "websocket"})
# RFC 6455 close code 1008 (policy violation): the refusal when the server cannot send an HTTP answer.
WS_POLICY_VIOLATION = 1008


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs as given; a bare address becomes a /32 or /128. Entries were validated when config loaded."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A hostname other than localhost may resolve anywhere: treat it as reachable from outside.
        return False


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


async def refuse(
    scope: Scope, send: Send, code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> None:
    if scope["type"] == "http":
        await send_error(send, code, message, headers)
        return
    if "websocket.http.response" in scope.get("extensions", {}):

        async def as_denial(event: Message) -> None:
            # The ASGI denial-response extension: the same answer, under websocket.http.response.* names.
            await send({**event, "type": "websocket." + event["type"]})

        await send_error(as_denial, code, message, headers)
        return
    await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": message})


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str = "",
        allowed_ips: Iterable[str] = (),
        trust_loopback: bool = False,
        public_paths: Iterable[str] = (),
        public_prefixes: tuple[str, ...] = (),
        signed: Callable[[Scope], bool] | None = None,
        keys: Callable[[Scope, bytes], LakehouseError | None] | None = None,
    ) -> None:
        """`trust_loopback`: the server is bound to loopback, so a loopback peer is this box (the gateway, the
        supervisor) and nothing else can reach it; the allow-list then admits loopback peers too.

        `signed`: requests that carry their own credential instead of the token (S3's signature, which storaged
        checks); they pass without the token, the allow-list still applies."""
        self.app = app
        self.trust_loopback = trust_loopback
        self.expected = token.encode()
        self.networks = parse_networks(allowed_ips)
        # Paths that need no token (the allow-list still applies): /health, and e.g. the console's page shells.
        self.public_paths = TOKEN_EXEMPT_PATHS | frozenset(public_paths)
        self.public_prefixes = public_prefixes
        self.signed = signed
        # A bearer that is not the token is tried as a client key (shared/keys/gate.py): None admits it, else the
        # refusal (401, 403 naming the scope it lacks, 429 past its requests per minute).
        self.keys = keys

    def token_exempt(self, path: str) -> bool:
        return path in self.public_paths or (bool(self.public_prefixes) and path.startswith(self.public_prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in GUARDED_SCOPES or (not self.expected and not self.networks):
            await self.app(scope, receive, send)
            return
        if self.networks:
            client = scope.get("client")
            peer = client[0] if client else None
            if not peer_allowed(peer, self.networks) and not (self.trust_loopback and peer and is_loopback(peer)):
                await refuse(scope, send, "forbidden", "your address is not in auth.allowed_ips")
                return
        if self.expected and not self.token_exempt(scope["path"]) and not (self.signed and self.signed(scope)):
            presented = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    presented = value
                    break
            scheme, _, credentials = presented.partition(b" ")
            # The scheme is case-insensitive (RFC 9110 §11.1); the token is compared in constant time.
            credentials = credentials.lstrip(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials, self.expected):
                refusal = (
                    self.keys(scope, credentials)
                    if self.keys is not None and scheme.lower() == b"bearer"
                    else LakehouseError("unauthorized", "missing or wrong Authorization: Bearer token")
                )
                if refusal is not None:
                    await refuse(scope, send, refusal.code, refusal.message, refusal.headers)
                    return
        await self.app(scope, receive, send)
