"""The typed async client other services (matrixd) use to call embedd.

Every error answer raises `EmbeddError` (a `RemoteError`) with the stack's code, the status and the message.
Pass `transport=httpx.ASGITransport(app)` to talk to an in-process embedd.
"""

from __future__ import annotations

import httpx

from services.embedd.schemas import EmbedResponse
from shared.upstream.client import RemoteError, ServiceClient, error_from_response, error_from_transport


class EmbeddError(RemoteError):
    """embedd answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


class EmbeddClient(ServiceClient):
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
