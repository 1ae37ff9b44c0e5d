"""One request's dispatch (cancelled if its client goes away) and its one log line, whichever way it ends."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import structlog
from starlette.requests import Request

from services.chatd.disconnect import ClientGone, until_disconnect
from services.chatd.dispatch import Attempt, Dispatcher, Target
from services.chatd.metrics import ProviderMetrics
from services.chatd.streams import Batches, Totals, attempts_text
from services.chatd.types import ChatRequest, Completion, Delta
from shared.errors import LakehouseError

T = TypeVar("T")


def routed_headers(target: Target) -> dict[str, str]:
    return {"x-lakehouse-provider": target.provider.name, "x-lakehouse-model": target.routed}


class Call:
    """One request's dispatch and its one log line, whichever way it ends."""

    def __init__(self, request: Request, chat: ChatRequest, api: str) -> None:
        self.request = request
        self.chat = chat
        self.api = api
        self.dispatcher: Dispatcher = request.app.state.dispatcher
        self.attempts: list[Attempt] = []
        self.totals = Totals(time.perf_counter())
        self.target: Target | None = None

    def log(self, status: str, totals: Totals) -> None:
        fields: dict[str, Any] = {
            "api": self.api,
            "stream": self.chat.stream,
            "requested": self.chat.model,
            "status": status,
            "latency_ms": totals.latency_ms,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
        }
        if self.target is not None:
            fields.update(provider=self.target.provider.name, model=self.target.upstream_model)
        elif self.attempts and self.attempts[-1].routed:
            provider, _, model = self.attempts[-1].routed.partition("/")
            fields.update(provider=provider, model=model)
        if len(self.attempts) > 1:
            fields["attempts"] = attempts_text(self.attempts)
        if "provider" in fields:
            provider_metrics: ProviderMetrics = self.request.app.state.provider_metrics
            provider_metrics.record(
                fields["provider"],
                error=None if status == "ok" else status,
                prompt_tokens=totals.prompt_tokens,
                completion_tokens=totals.completion_tokens,
            )
        log = structlog.get_logger("chatd")
        (log.info if status == "ok" else log.warning)("chat", **fields)

    async def _dispatch(self, work: Awaitable[T]) -> T:
        """`work`, cancelled if the client goes away; a failure gets the request's one log line on its way out."""
        try:
            return await until_disconnect(self.request.receive, work)
        except LakehouseError as exc:
            self.log(exc.code, self.totals)
            raise
        except ClientGone:
            self.log("client_gone", self.totals)
            raise

    async def complete(self) -> Completion:
        self.target, completion = await self._dispatch(self.dispatcher.complete(self.chat, self.attempts))
        self.totals.finish_reason = completion.finish_reason
        self.totals.prompt_tokens = completion.prompt_tokens
        self.totals.completion_tokens = completion.completion_tokens
        self.log("ok", self.totals)
        return completion

    async def open_stream(self) -> tuple[Target, list[Delta], Batches]:
        target, first, rest = await self._dispatch(self.dispatcher.stream(self.chat, self.attempts))
        self.target = target
        return target, first, rest
