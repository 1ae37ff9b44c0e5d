"""Matching an If-Match / If-None-Match header against an ETag (RFC 9110 §13.1), for every service that sends ETags."""

from __future__ import annotations


def etag_matches(header: str, etag: str | None) -> bool:
    """True when the header's list names `etag` (`*` matches any existing representation; W/ prefixes ignored)."""
    if etag is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags
