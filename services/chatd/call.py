"""One request's dispatch (cancelled if its client goes away), and whichever way it ends its one log line and its
one spend-ledger record, charged to the key that made it (services/chatd/accounts.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from starlette.requests import Request

from services.chatd.accounts import ROOT_NAME, Accounts, grant_of
from services.chatd.disconnect import ClientGone, until_disconnect
from services.chatd.dispatch import Attempt, Dispatcher, Target
from services.chatd.ledger import SpendRecord
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
        self.accounts: Accounts = request.app.state.accounts
        self.grant = grant_of(request.headers)
        self.reserved = 0

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
        self._settle(status, totals, fields)

    def _settle(self, status: str, totals: Totals, fields: dict[str, Any]) -> None:
        prompt, completion = totals.prompt_tokens or 0, totals.completion_tokens or 0
        model = self.target.routed if self.target is not None else None
        record = SpendRecord(
            ts=datetime.now(UTC),
            request_id=self.request.headers.get("x-request-id", ""),
            key_id=self.grant.id if self.grant else None,
            key_name=self.grant.name if self.grant else ROOT_NAME,
            api=self.api,
            requested=self.chat.model,
            model=model,
            provider=fields.get("provider"),
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=self.accounts.cost(model, prompt, completion),
            latency_ms=totals.latency_ms,
            status=status,
            stream=self.chat.stream,
            fallback=len(self.attempts) > 1 and status == "ok",
        )
        self.accounts.settle(self.grant, self.reserved, record)

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

    def _admit(self) -> None:
        """The key's models, tokens and budget checked before anything is dispatched; a refusal is logged and in
        the ledger too."""
        try:
            self.reserved = self.accounts.admit(self.grant, self.chat)
        except LakehouseError as exc:
            self.log(exc.code, self.totals)
            raise

    async def complete(self) -> Completion:
        self._admit()
        self.target, completion = await self._dispatch(self.dispatcher.complete(self.chat, self.attempts))
        self.totals.finish_reason = completion.finish_reason
        self.totals.prompt_tokens = completion.prompt_tokens
        self.totals.completion_tokens = completion.completion_tokens
        self.log("ok", self.totals)
        return completion

    async def open_stream(self) -> tuple[Target, list[Delta], Batches]:
        self._admit()
        target, first, rest = await self._dispatch(self.dispatcher.stream(self.chat, self.attempts))
        self.target = target
        return target, first, rest
