"""The typed async client other services (matrixd) use to call vectord.

Every error answer raises `VectordError` (a `RemoteError`) with the stack's code, the status and the message.
Pass `transport=httpx.ASGITransport(app)` to talk to an in-process vectord.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from services.vectord.schemas import IndexInfo, QueryRequest, QueryResult
from shared.remote import RemoteError, error_from_response, error_from_transport

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class VectordError(RemoteError):
    """vectord answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


class VectordClient:
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
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout, headers=headers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url, "vectord", VectordError) from None
        if not response.is_success:
            raise error_from_response(response, "vectord", VectordError)
        return response

    async def index(self, name: str) -> IndexInfo:
        response = await self._call("GET", f"/v1/vectors/{quote(name, safe='')}")
        return IndexInfo.model_validate_json(response.content)

    async def query(self, name: str, request: QueryRequest) -> QueryResult:
        body = request.model_dump(exclude_none=True)
        response = await self._call("POST", f"/v1/vectors/{quote(name, safe='')}/query", body)
        return QueryResult.model_validate_json(response.content)
