"""A small pooled HTTP/1.1 client on asyncio and httptools: the hot path to upstreams (gateway, chatd).

httpx stays for everything else; here every microsecond per request counts, and bytes must pass untouched
(no decompression, no injected headers, no cookie jar). One `UpstreamPool` per upstream URL.

connection.py is one connection and one exchange on it, pool.py the pool, errors.py what can go wrong.
"""

from __future__ import annotations

from shared.upstream.connection import Headers
from shared.upstream.errors import UpstreamBroken, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from shared.upstream.pool import UpstreamPool, UpstreamResponse, chunked

__all__ = [
    "Headers",
    "UpstreamBroken",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "chunked",
]
