"""The one I/O path every provider shares: POST JSON to the upstream, map every failure to the stack's errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from services.chatd.types import ChatRequest, Completion, ProviderError, Translator

USER_AGENT = "lakehouse-chatd/0.1"
DEFAULT_TIMEOUT_SECS = 180.0
MAX_ERROR_DETAIL = 300


class Provider:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        translator: Translator,
        client: httpx.AsyncClient,
        key: str = "",
        timeout_secs: float = DEFAULT_TIMEOUT_SECS,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.translator = translator
        self.client = client
        self.timeout_secs = timeout_secs or DEFAULT_TIMEOUT_SECS
        self.requests = 0
        self.errors = 0
        self._key = key
        self._headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        if key:
            self._headers["authorization"] = f"Bearer {key}"

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        self.requests += 1
        try:
            return await self._complete(request, model)
        except ProviderError:
            self.errors += 1
            raise

    async def _complete(self, request: ChatRequest, model: str) -> Completion:
        call = self.translator.encode(request, model)
        url = self.base_url + call.path
        try:
            async with asyncio.timeout(self.timeout_secs):
                response = await self.client.post(url, content=json.dumps(call.payload), headers=self._headers)
        except (TimeoutError, httpx.TimeoutException):
            raise self._error("upstream_timeout", f"no answer within {self.timeout_secs:g}s") from None
        except httpx.TransportError as exc:
            raise self._error("upstream_unavailable", f"cannot reach {url}: {type(exc).__name__}") from None
        body = self._json(response)
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            raise self._error(
                "rate_limited",
                self._detail("rate limited the request (429)", body),
                headers={"retry-after": retry_after} if retry_after else None,
            )
        if response.status_code != 200:
            raise self._error("upstream_error", self._detail(f"answered {response.status_code}", body))
        if body is None:
            raise self._error("upstream_error", "answered 200 with a body that is not JSON")
        try:
            return self.translator.decode(body)
        except (ValueError, AttributeError, TypeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "unexpected response shape"
            raise self._error("upstream_error", f"answered 200 but {reason}") from None

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            return None

    def _detail(self, what: str, body: Any) -> str:
        message = self.translator.error_message(body) if body is not None else None
        return f"{what}: {message[:MAX_ERROR_DETAIL]}" if message else what

    def _error(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> ProviderError:
        text = f"{self.name}: {message}"
        if self._key:
            # An upstream may echo what it was sent; the key never leaves this process.
            text = text.replace(self._key, "***")
        return ProviderError(code, text, headers=headers)
