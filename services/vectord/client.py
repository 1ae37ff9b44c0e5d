"""The typed async client other services (matrixd) use to call vectord.

Every error answer raises `VectordError` (a `RemoteError`) with the stack's code, the status and the message.
Pass `transport=httpx.ASGITransport(app)` to talk to an in-process vectord.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from services.vectord.schemas import IndexInfo, QueryRequest, QueryResult
from shared.upstream.client import RemoteError, ServiceClient, error_from_response, error_from_transport


class VectordError(RemoteError):
    """vectord answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


class VectordClient(ServiceClient):
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
