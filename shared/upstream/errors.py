"""What can go wrong talking to an upstream; each carries the stack's error code for it."""

from __future__ import annotations

from shared.errors import ErrorCode


class UpstreamError(Exception):
    """The upstream could not give a (complete) response; `code` is the stack's error code for it."""

    code: ErrorCode = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    """No connection could be made."""

    code: ErrorCode = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """No response headers within the deadline."""

    code: ErrorCode = "upstream_timeout"


class UpstreamBroken(UpstreamError):
    """The connection failed or the upstream broke the protocol after the request was sent."""

    code: ErrorCode = "upstream_error"
