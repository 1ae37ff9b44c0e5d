"""What both fakes share: a record of every request, scripted answers, a delay, and a CLI to run one."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DEFAULT_MODELS = frozenset(
    {"qwen3.5:latest", "qwen3:latest", "kimi-k2.6", "anthropic/claude-opus-4-7", "nomic-embed-text"}
)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    """`delay_secs` holds each answer back (a client that goes away meanwhile counts in `disconnected`);
    streams send one chunk per word, `chunk_delay_secs` apart, and `fail_after_chunks` makes them fail mid-stream.
    `streams_open` / `streams_aborted` count streams in progress and those their client abandoned."""

    models: set[str] = field(default_factory=lambda: set(DEFAULT_MODELS))
    received: list[Recorded] = field(default_factory=list)
    script: list[Response] = field(default_factory=list)  # answered first, one per request, instead of the normal reply
    delay_secs: float = 0.0
    record: bool = True
    chunk_delay_secs: float = 0.0
    fail_after_chunks: int | None = None
    disconnected: int = 0
    streams_open: int = 0
    streams_aborted: int = 0

    async def take(self, request: Request) -> tuple[Any, Response | None]:
        """Record the request; return its JSON body and a scripted response if one is queued."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        if self.record:
            self.received.append(Recorded(request.method, request.url.path, dict(request.headers), body))
        if self.delay_secs:
            await self._hold(request)
        return body, (self.script.pop(0) if self.script else None)

    async def _hold(self, request: Request) -> None:
        deadline = asyncio.get_running_loop().time() + self.delay_secs
        while asyncio.get_running_loop().time() < deadline:
            if await request.is_disconnected():
                self.disconnected += 1
                return
            await asyncio.sleep(0.01)

    async def chunks(self, events: list[bytes], error: bytes) -> AsyncIterator[bytes]:
        """`events` one at a time (with the configured gaps and failure), counting abandoned streams."""
        self.streams_open += 1
        finished = False
        try:
            for index, event in enumerate(events):
                if self.fail_after_chunks is not None and index == self.fail_after_chunks:
                    yield error
                    finished = True
                    return
                if self.chunk_delay_secs and index:
                    await asyncio.sleep(self.chunk_delay_secs)
                yield event
            finished = True
        finally:
            self.streams_open -= 1
            if not finished:
                self.streams_aborted += 1

    async def requests_endpoint(self, request: Request) -> JSONResponse:
        return JSONResponse([vars(r) for r in self.received])

    async def settings_endpoint(self, request: Request) -> JSONResponse:
        """POST {"chunk_delay_secs": x}: slow the streams of a fake running in another process (benchmarks)."""
        self.chunk_delay_secs = float((await request.json())["chunk_delay_secs"])
        return JSONResponse({"chunk_delay_secs": self.chunk_delay_secs})

    async def stats_endpoint(self, request: Request) -> JSONResponse:
        counters = ("disconnected", "streams_open", "streams_aborted")
        return JSONResponse({name: getattr(self, name) for name in counters})


def echo_words(text: str, limit: int | None) -> tuple[list[str], bool]:
    """The fake's answer to `text` as words, cut to `limit` words; and whether it was cut."""
    words = ["echo:", *text.split()]
    if limit is not None and len(words) > limit:
        return words[:limit], True
    return words, False


def echo_text(text: str, limit: int | None) -> tuple[str, bool]:
    """The fake's answer to `text`, cut to `limit` words; and whether it was cut."""
    words, cut = echo_words(text, limit)
    return " ".join(words), cut


def stream_pieces(words: list[str]) -> list[str]:
    """The answer's words as stream deltas that join back to the whole answer."""
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def run_fake(build: Callable[[FakeUpstream], Any], argv: Sequence[str] | None, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-record", action="store_true", help="keep no record (benchmarks)")
    args = parser.parse_args(argv)
    app = build(FakeUpstream(record=not args.no_record))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
