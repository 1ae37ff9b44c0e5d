"""The one I/O path every provider shares: POST JSON to the upstream, map every failure to the stack's errors."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from services.chatd.types import ChatRequest, Completion, ProviderError, Translator
from shared.errors import ErrorCode
from shared.upstream import UpstreamError, UpstreamPool, UpstreamTimeout

USER_AGENT = b"lakehouse-chatd/0.1"
MAX_ERROR_DETAIL = 300


class Provider:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        translator: Translator,
        key: str = "",
        timeout_secs: float,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.translator = translator
        # One pooled client per provider for the life of the process: no per-request client or handshake.
        self.pool = UpstreamPool(base_url)
        self.timeout_secs = timeout_secs
        self.requests = 0
        self.errors = 0
        self._key = key
        self._headers = [
            (b"host", self.pool.host_header),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"user-agent", USER_AGENT),
        ]
        if key:
            self._headers.append((b"authorization", b"Bearer " + key.encode()))

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        self.requests += 1
        try:
            return await self._complete(request, model)
        except ProviderError:
            self.errors += 1
            raise

    async def _complete(self, request: ChatRequest, model: str) -> Completion:
        call = self.translator.encode(request, model)
        body = orjson.dumps(call.payload)
        headers = [*self._headers, (b"content-length", str(len(body)).encode())]
        try:
            async with asyncio.timeout(self.timeout_secs):
                response = await self.pool.request(
                    b"POST", call.path.encode(), headers, body, header_timeout_secs=self.timeout_secs
                )
                raw = await response.read_all()
        except (TimeoutError, UpstreamTimeout) as exc:
            raise self._error("upstream_timeout", f"no answer within {self.timeout_secs:g}s") from exc
        except UpstreamError as exc:
            raise self._error(exc.code, str(exc)) from exc
        status = response.status
        parsed = self._json(raw)
        if status == 429:
            retry_after = next((v.decode("latin-1") for k, v in response.headers if k == b"retry-after"), None)
            raise self._error(
                "rate_limited",
                self._detail("rate limited the request (429)", parsed),
                headers={"retry-after": retry_after} if retry_after else None,
            )
        if status != 200:
            raise self._error("upstream_error", self._detail(f"answered {status}", parsed))
        if parsed is None:
            raise self._error("upstream_error", "answered 200 with a body that is not JSON")
        try:
            return self.translator.decode(parsed)
        except (ValueError, AttributeError, TypeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "unexpected response shape"
            raise self._error("upstream_error", f"answered 200 but {reason}") from None

    async def aclose(self) -> None:
        await self.pool.aclose()

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None

    def _detail(self, what: str, body: Any) -> str:
        message = self.translator.error_message(body) if body is not None else None
        return f"{what}: {message[:MAX_ERROR_DETAIL]}" if message else what

    def _error(self, code: ErrorCode, message: str, *, headers: dict[str, str] | None = None) -> ProviderError:
        text = f"{self.name}: {message}"
        if self._key:
            # An upstream may echo what it was sent; the key never leaves this process.
            text = text.replace(self._key, "***")
        return ProviderError(code, text, headers=headers)
