"""The one I/O path every provider shares: POST JSON to the upstream (whole or streamed), map every failure to the
stack's errors, keep the provider's cooldown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from services.chatd.cooldown import Cooldown
from services.chatd.framing import EventSplitter
from services.chatd.types import ChatRequest, Completion, Delta, ProviderError, Translator
from shared.errors import ErrorCode
from shared.telemetry.redact import redact, secret_pattern
from shared.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout

USER_AGENT = b"lakehouse-chatd/0.1"
MAX_ERROR_DETAIL = 300
MAX_ERROR_BODY = 64 * 1024  # of an upstream's error body, enough for its message


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
        self.cooldown = Cooldown()
        self.requests = 0
        self.errors = 0
        self._secrets = secret_pattern([key])
        self._headers = [
            (b"host", self.pool.host_header),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"user-agent", USER_AGENT),
        ]
        if key:
            self._headers.append((b"authorization", b"Bearer " + key.encode()))

    def check_cooldown(self) -> None:
        """429 without calling the upstream while it is cooling down after its own 429."""
        if self.cooldown.remaining() > 0:
            retry = self.cooldown.retry_after_header()
            raise self._error(
                "rate_limited",
                f"cooling down after a 429 from the upstream; retry in {retry}s",
                fallback=True,
                headers={"retry-after": retry},
            )

    async def complete(self, request: ChatRequest, model: str, *, timeout_secs: float | None = None) -> Completion:
        self.check_cooldown()
        self.requests += 1
        try:
            return await self._complete(request, model, timeout_secs or self.timeout_secs)
        except ProviderError:
            self.errors += 1
            raise

    async def _complete(self, request: ChatRequest, model: str, timeout_secs: float) -> Completion:
        try:
            async with asyncio.timeout(timeout_secs):
                response = await self._open(request, model, timeout_secs, stream=False)
                raw = await response.read_all()
        except (TimeoutError, UpstreamTimeout) as exc:
            raise self._timeout(timeout_secs) from exc
        except UpstreamError as exc:
            raise self._error(exc.code, str(exc), fallback=True) from exc
        parsed = self._json(raw)
        if parsed is None:
            raise self._error("upstream_error", "answered 200 with a body that is not JSON", fallback=True)
        try:
            return self.translator.decode(parsed)
        except (ValueError, AttributeError, TypeError) as exc:
            raise self._error("upstream_error", f"answered 200 but {_reason(exc)}", fallback=True) from None

    async def stream(
        self, request: ChatRequest, model: str, *, timeout_secs: float | None = None
    ) -> AsyncGenerator[list[Delta], None]:
        """The upstream's stream as batches of Deltas (what one read brought).

        `timeout_secs` bounds the wait for the first event; after it each event must follow the previous one within
        the provider's timeout. Closing the iterator early (a client that went away) closes the upstream connection.
        """
        self.check_cooldown()
        self.requests += 1
        first_timeout = timeout_secs or self.timeout_secs
        response: UpstreamResponse | None = None
        try:
            try:
                async with asyncio.timeout(first_timeout):
                    response = await self._open(request, model, first_timeout, stream=True)
            except (TimeoutError, UpstreamTimeout) as exc:
                raise self._timeout(first_timeout) from exc
            splitter = EventSplitter(self.translator.framing)
            read_timeout = first_timeout
            while True:
                try:
                    async with asyncio.timeout(read_timeout):
                        data = await response.read()
                except TimeoutError as exc:
                    raise self._timeout(read_timeout) from exc
                events = splitter.feed(data) if data is not None else splitter.tail()
                # One batch per upstream read: a burst of tokens becomes one write to the client, not one each.
                batch: list[Delta] = []
                try:
                    for event in events:
                        delta = self._delta(event)
                        if delta is not None:
                            batch.append(delta)
                except ProviderError:
                    if batch:
                        yield batch  # what arrived before the failure still reaches the client
                    raise
                if batch:
                    yield batch
                if data is None or splitter.done or (batch and batch[-1].done):
                    return
                read_timeout = self.timeout_secs
        except UpstreamError as exc:
            self.errors += 1
            raise self._error(exc.code, str(exc), fallback=True) from exc
        except ProviderError:
            self.errors += 1
            raise
        finally:
            if response is not None:
                response.release()  # back to the pool only when the whole body was read

    async def get(self, path: str, timeout_secs: float) -> Any:
        """GET a small JSON document (Ollama's /api/tags); None when it cannot be had."""
        headers = [(b"host", self.pool.host_header), (b"accept", b"application/json"), (b"user-agent", USER_AGENT)]
        try:
            async with asyncio.timeout(timeout_secs):
                response = await self.pool.request(
                    b"GET", path.encode(), headers, b"", header_timeout_secs=timeout_secs
                )
                raw = await response.read_all()
        except (TimeoutError, UpstreamError):
            return None
        return self._json(raw) if response.status == 200 else None

    async def _open(self, request: ChatRequest, model: str, timeout_secs: float, *, stream: bool) -> UpstreamResponse:
        """Send the call; return the response once it is a 200, else raise the mapped error."""
        call = self.translator.encode(request, model, stream=stream)
        body = orjson.dumps(call.payload)
        headers = [*self._headers, (b"content-length", str(len(body)).encode())]
        response = await self.pool.request(b"POST", call.path.encode(), headers, body, header_timeout_secs=timeout_secs)
        if response.status == 200:
            return response
        raw = await _read_capped(response, MAX_ERROR_BODY)
        parsed = self._json(raw)
        if response.status == 429:
            retry_after = next((v.decode("latin-1") for k, v in response.headers if k == b"retry-after"), None)
            self.cooldown.start(retry_after)
            raise self._error(
                "rate_limited",
                self._detail("rate limited the request (429)", parsed),
                fallback=True,
                headers={"retry-after": retry_after} if retry_after else None,
            )
        raise self._error(
            "upstream_error", self._detail(f"answered {response.status}", parsed), fallback=response.status >= 500
        )

    def _delta(self, event: bytes) -> Delta | None:
        try:
            parsed = orjson.loads(event)
        except orjson.JSONDecodeError:
            raise self._error("upstream_error", "sent a stream event that is not JSON", fallback=True) from None
        if not isinstance(parsed, dict):
            raise self._error("upstream_error", "sent a stream event that is not a JSON object", fallback=True)
        message = self.translator.error_message(parsed)
        if message is not None:
            raise self._error("upstream_error", f"failed mid-stream: {message}", fallback=True)
        try:
            return self.translator.decode_chunk(parsed)
        except (ValueError, AttributeError, TypeError) as exc:
            raise self._error("upstream_error", f"sent a bad stream event: {_reason(exc)}", fallback=True) from None

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
        return f"{what}: {message}" if message else what

    def _timeout(self, seconds: float) -> ProviderError:
        return self._error("upstream_timeout", f"no answer within {round(seconds, 1):g}s", fallback=True)

    def _error(
        self, code: ErrorCode, message: str, *, fallback: bool, headers: dict[str, str] | None = None
    ) -> ProviderError:
        # An upstream may echo what it was sent: the key is masked wherever it appears, before the cut.
        text = redact(f"{self.name}: {message}", self._secrets, limit=MAX_ERROR_DETAIL)
        return ProviderError(code, text, fallback=fallback, headers=headers)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ValueError) else "unexpected response shape"


async def _read_capped(response: UpstreamResponse, limit: int) -> bytes:
    """An error body, at most `limit` bytes of it (the connection is dropped if more was coming)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit and (chunk := await response.read()) is not None:
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.release()
    return b"".join(chunks)[:limit]
