"""The Ollama backend: POST /api/embed with the whole batch in one request."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from services.embedd.backend import Batch
from shared.errors import ErrorCode, LakehouseError

CONNECT_TIMEOUT_SECS = 5.0

# Ollama's status → the stack's code; anything else is upstream_error.
CODE_BY_STATUS: dict[int, ErrorCode] = {404: "not_found", 429: "rate_limited"}


def apportion(total: int | None, texts: list[str]) -> list[int]:
    """Ollama counts tokens per batch only; split the count over the texts by length so cached texts keep a share."""
    if not total or not texts:
        return [0] * len(texts)
    lengths = [len(text) for text in texts]
    whole = sum(lengths) or 1
    shares = [total * length // whole for length in lengths]
    shares[-1] += total - sum(shares)
    return shares


def decode(body: Any, texts: list[str]) -> Batch:
    """The /api/embed response as a Batch, or ValueError saying what is wrong with it."""
    if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
        raise ValueError("no embeddings list in the response")
    rows = body["embeddings"]
    if len(rows) != len(texts):
        raise ValueError(f"{len(rows)} embeddings for {len(texts)} texts")
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError("embeddings are not equal-length lists of numbers") from None
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise ValueError("embeddings are not equal-length lists of numbers")
    count = body.get("prompt_eval_count")
    return Batch(vectors, apportion(count if isinstance(count, int) else None, texts))


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else f"HTTP {response.status_code}"


class OllamaBackend:
    name = "ollama"

    def __init__(self, url: str, *, timeout_secs: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.timeout_secs = timeout_secs
        self._client = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(timeout_secs, connect=min(CONNECT_TIMEOUT_SECS, timeout_secs)),
            transport=transport,
            headers={"user-agent": "lakehouse-embedd/0.1"},
        )

    def check(self, model: str) -> None:
        return None

    async def embed(self, model: str, texts: list[str]) -> Batch:
        try:
            response = await self._client.post("/api/embed", json={"model": model, "input": texts})
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise LakehouseError("upstream_unavailable", f"Ollama at {self.url} is unreachable") from None
        except httpx.TimeoutException:
            raise LakehouseError(
                "upstream_timeout", f"Ollama at {self.url} did not answer within {self.timeout_secs:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise LakehouseError("upstream_error", f"Ollama at {self.url} failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            code = CODE_BY_STATUS.get(response.status_code, "upstream_error")
            raise LakehouseError(code, f"Ollama: {error_message(response)} (HTTP {response.status_code})")
        try:
            return decode(response.json(), texts)
        except ValueError as exc:
            raise LakehouseError("upstream_error", f"Ollama's /api/embed answer is unusable: {exc}") from None

    async def aclose(self) -> None:
        await self._client.aclose()
