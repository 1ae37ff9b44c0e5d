"""What a typed service client raises when another service answers with the stack's error body, or cannot be reached."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from shared.errors import STATUS_BY_CODE, ErrorCode, LakehouseError

# For answers without the JSON error body (a HEAD has none): the first code the table gives the status.
CODE_FOR_STATUS: dict[int, str] = {status: code for code, status in reversed(STATUS_BY_CODE.items())}


class RemoteError(Exception):
    """Another service answered `status` with `{"error": {"code", "message"}}`, or could not be reached.

    `code` is the stack's error code as the server sent it (upstream_unavailable / upstream_timeout when the call
    never got an answer), so a caller can branch on it: `except StorageError as e: if e.code == "not_found": ...`.
    """

    def __init__(self, code: str, status: int, message: str, *, service: str) -> None:
        super().__init__(f"{service}: {status} {code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.service = service

    def to_lakehouse_error(self) -> LakehouseError:
        """The same error for our own caller, naming the other service; an unknown code becomes upstream_error."""
        code: ErrorCode = self.code if self.code in STATUS_BY_CODE else "upstream_error"
        return LakehouseError(code, f"{self.service}: {self.message}")


def error_from_response(response: httpx.Response, service: str, cls: type[RemoteError]) -> RemoteError:
    """The typed error for a non-2xx response whose body has been read."""
    code = CODE_FOR_STATUS.get(response.status_code, "upstream_error")
    message = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text[:200].strip()
        if text:
            message = f"unexpected {message} response: {text}"
    return cls(code, response.status_code, message, service=service)


def error_from_transport(exc: httpx.TransportError, url: str, service: str, cls: type[RemoteError]) -> RemoteError:
    """Unreachable → upstream_unavailable (502); no answer in time → upstream_timeout (504)."""
    if isinstance(exc, httpx.TimeoutException):
        return cls("upstream_timeout", 504, f"no answer from {url} in time", service=service)
    return cls("upstream_unavailable", 502, f"cannot reach {url}: {type(exc).__name__}", service=service)


# Idle connections are dropped before uvicorn's own keep-alive timeout (5 s) closes them under a request.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class ServiceClient:
    """What every typed service client shares: one pooled httpx client that carries the stack's token.

    Pass `transport=httpx.ASGITransport(app)` to talk to an in-process service.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout, headers=headers, limits=POOL_LIMITS
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
