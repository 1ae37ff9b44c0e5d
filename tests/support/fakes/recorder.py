"""What both fakes share: a record of every request, scripted answers, a delay, and a CLI to run one."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Sequence
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
    models: set[str] = field(default_factory=lambda: set(DEFAULT_MODELS))
    received: list[Recorded] = field(default_factory=list)
    script: list[Response] = field(default_factory=list)  # answered first, one per request, instead of the normal reply
    delay_secs: float = 0.0
    record: bool = True

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
            await asyncio.sleep(self.delay_secs)
        return body, (self.script.pop(0) if self.script else None)

    async def requests_endpoint(self, request: Request) -> JSONResponse:
        return JSONResponse([vars(r) for r in self.received])


def echo_text(text: str, limit: int | None) -> tuple[str, bool]:
    """The fake's answer to `text`, cut to `limit` words; and whether it was cut."""
    words = ["echo:", *text.split()]
    if limit is not None and len(words) > limit:
        return " ".join(words[:limit]), True
    return " ".join(words), False


def run_fake(build: Callable[[FakeUpstream], Any], argv: Sequence[str] | None, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-record", action="store_true", help="keep no record (benchmarks)")
    args = parser.parse_args(argv)
    app = build(FakeUpstream(record=not args.no_record))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
