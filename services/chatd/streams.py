"""A provider's stream re-encoded for the client, batch by batch: OpenAI `chat.completion.chunk` SSE events or native
NDJSON lines. An upstream failure after the first byte becomes one error event, then the stream closes."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from services.chatd.dispatch import Attempt, Target
from services.chatd.native import delta_line, error_line, final_line, native_body
from services.chatd.openai_api import ChunkEncoder
from services.chatd.types import Delta, ProviderError

Batches = AsyncGenerator[list[Delta], None]


@dataclass
class Totals:
    """What the stream carried so far; the final event and the log line are made from it."""

    started: float
    content: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def add(self, batch: list[Delta]) -> None:
        for delta in batch:
            if delta.content:
                self.content.append(delta.content)
            if delta.finish_reason is not None:
                self.finish_reason = delta.finish_reason
            if delta.prompt_tokens is not None:
                self.prompt_tokens = delta.prompt_tokens
            if delta.completion_tokens is not None:
                self.completion_tokens = delta.completion_tokens

    @property
    def latency_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


# Called once when the stream ends: (status, totals), status "ok", an error code or "client_gone".
StreamLog = Callable[[str, Totals], None]


async def _relay(
    first: list[Delta],
    rest: Batches,
    totals: Totals,
    encode: Callable[[list[Delta]], bytes],
    finish: Callable[[], bytes],
    fail: Callable[[ProviderError], bytes],
    log: StreamLog,
    opening: bytes = b"",
) -> AsyncGenerator[bytes, None]:
    # The end is logged (and charged, and in the ledger) before its last bytes go out: a client that has the whole
    # stream has its record written.
    logged = False
    try:
        totals.add(first)
        yield opening + encode(first)
        async for batch in rest:
            totals.add(batch)
            yield encode(batch)
        last = finish()
        logged = True
        log("ok", totals)
        yield last
    except ProviderError as exc:
        if not logged:
            logged = True
            log(exc.code, totals)
        yield fail(exc)
    finally:
        await rest.aclose()
        if not logged:
            log("client_gone", totals)  # the stream did not reach an end of its own


def openai_stream(
    target: Target, first: list[Delta], rest: Batches, *, include_usage: bool, totals: Totals, log: StreamLog
) -> AsyncGenerator[bytes, None]:
    encoder = ChunkEncoder(target.routed, include_usage=include_usage)
    opening = encoder.first(first[0] if first else None)
    totals.add(first[:1])

    def encode(batch: list[Delta]) -> bytes:
        return b"".join(encoder.delta(d) for d in batch)

    def finish() -> bytes:
        return encoder.end(totals.finish_reason, totals.prompt_tokens, totals.completion_tokens)

    return _relay(first[1:], rest, totals, encode, finish, encoder.error, log, opening)


def native_stream(
    target: Target, first: list[Delta], rest: Batches, *, totals: Totals, log: StreamLog
) -> AsyncGenerator[bytes, None]:
    def encode(batch: list[Delta]) -> bytes:
        return b"".join(delta_line(d) for d in batch)

    def finish() -> bytes:
        body = native_body(
            target.provider.name,
            target.upstream_model,
            "".join(totals.content),
            totals.finish_reason,
            totals.prompt_tokens,
            totals.completion_tokens,
            totals.latency_ms,
        )
        return final_line(body)

    return _relay(first, rest, totals, encode, finish, error_line, log)


def attempts_text(attempts: list[Attempt]) -> list[str]:
    return [f"{a.candidate}: {a.outcome}" for a in attempts]
