"""The typed async client other services (matrixd) use to call embedd.

Every error answer raises `EmbeddError` (a `RemoteError`) with the stack's code, the status and the message.
Pass `transport=httpx.ASGITransport(app)` to talk to an in-process embedd.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from services.embedd.schemas import EmbedResponse
from shared.remote import RemoteError, error_from_response, error_from_transport

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class EmbeddError(RemoteError):
    """embedd answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


class EmbeddClient:
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

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbedResponse:
        """Vectors for `texts` (in order) from `model`, or embedd's default model."""
        body: dict[str, object] = {"texts": texts}
        if model is not None:
            body["model"] = model
        try:
            response = await self._http.post("/v1/embed", json=body)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url, "embedd", EmbeddError) from None
        if not response.is_success:
            raise error_from_response(response, "embedd", EmbeddError)
        return EmbedResponse.model_validate_json(response.content)
