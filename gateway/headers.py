"""Header rules of Go's httputil.ReverseProxy: hop-by-hop headers stop here, X-Forwarded-* are added."""

from __future__ import annotations

from shared.keys.grant import GRANT_HEADER
from shared.upstream import Headers

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def _connection_tokens(headers: Headers) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def strip_hop_by_hop(headers: Headers) -> Headers:
    """Drop the headers named in Connection, then the fixed hop-by-hop list; names must be lowercase."""
    tokens = _connection_tokens(headers)
    drop = HOP_BY_HOP | tokens if tokens else HOP_BY_HOP
    return [(name, value) for name, value in headers if name not in drop]


# Set by the gateway alone (the key a request was admitted with, shared/keys/grant.py): a client's own is dropped.
GATEWAY_SET = frozenset({b"x-forwarded-proto", b"x-forwarded-host", GRANT_HEADER.encode()})


def upstream_request_headers(
    headers: Headers, *, host: bytes, peer: str | None, scheme: str, chunked: bool, grant: bytes | None = None
) -> Headers:
    """The client's headers as the upstream should see them; `grant` is the admitted key's, if a key was."""
    out: Headers = []
    forwarded_for: list[bytes] = []
    client_host = b""
    drop = HOP_BY_HOP | _connection_tokens(headers)
    for name, value in headers:
        if name in drop:
            continue
        if name == b"host":
            client_host = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name not in GATEWAY_SET:
            out.append((name, value))
    if peer:
        forwarded_for.append(peer.encode())
    out.append((b"host", host))
    if forwarded_for:
        out.append((b"x-forwarded-for", b", ".join(forwarded_for)))
    if client_host:
        out.append((b"x-forwarded-host", client_host))
    out.append((b"x-forwarded-proto", scheme.encode()))
    if chunked:
        out.append((b"transfer-encoding", b"chunked"))
    if grant is not None:
        out.append((GRANT_HEADER.encode(), grant))
    return out
