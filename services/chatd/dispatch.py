"""Tiers and fallback chains: which candidates a request tries, in order, within one shared timeout budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.chatd.provider import Provider
from services.chatd.registry import Registry
from services.chatd.routing import resolve
from services.chatd.types import ChatError, ChatRequest, Completion, Delta, ProviderError
from shared.config.models import TIERS, ModelsConfig

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """One candidate, resolved: the provider that serves it and the model name sent upstream."""

    provider: Provider
    upstream_model: str

    @property
    def routed(self) -> str:
        """The canonical model string (`<provider>/<model>`), which routes back to the same place."""
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class Attempt:
    candidate: str  # as the chain names it: a tier or a model string
    outcome: str  # "ok" or the error code
    routed: str = ""  # where it went, when it resolved to a registered provider


class Dispatcher:
    def __init__(
        self,
        registry: Registry,
        models: ModelsConfig,
        fallbacks: Mapping[str, Sequence[str]],
        budget_secs: float,
        attempt_secs: float = 0.0,
    ) -> None:
        self.registry = registry
        self.attempt_secs = attempt_secs
        self.models = models
        self.fallbacks = {name: list(chain) for name, chain in fallbacks.items()}
        self.budget_secs = budget_secs

    def chain(self, request: ChatRequest) -> list[str]:
        """The model, then the request's own fallbacks if it names any, else the configured ones for the model."""
        rest = request.fallbacks if request.fallbacks is not None else self.fallbacks.get(request.model, [])
        return [request.model, *rest]

    def target(self, candidate: str) -> Target:
        model = candidate
        if candidate in TIERS:
            model = self.models.resolve(candidate)
            if not model:
                raise ChatError(
                    "invalid_request",
                    f'model "{candidate}" is a tier with no model configured: set [models] {candidate}',
                    param="model",
                )
        route = resolve(model)
        return Target(self.registry.get(route.provider, model), route.upstream_model)

    async def complete(self, request: ChatRequest, attempts: list[Attempt]) -> tuple[Target, Completion]:
        async def call(target: Target, budget: float) -> Completion:
            return await target.provider.complete(request, target.upstream_model, timeout_secs=budget)

        return await self._first(request, call, attempts)

    async def stream(
        self, request: ChatRequest, attempts: list[Attempt]
    ) -> tuple[Target, list[Delta], AsyncGenerator[list[Delta], None]]:
        """The first candidate whose stream yields its first event; falling back stops there (the first byte)."""

        async def start(target: Target, budget: float) -> tuple[list[Delta], AsyncGenerator[list[Delta], None]]:
            deltas = target.provider.stream(request, target.upstream_model, timeout_secs=budget)
            try:
                return await anext(deltas), deltas
            except StopAsyncIteration:
                return [], deltas

        target, (first, deltas) = await self._first(request, start, attempts)
        return target, first, deltas

    async def _first(
        self, request: ChatRequest, call: Callable[[Target, float], Awaitable[T]], attempts: list[Attempt]
    ) -> tuple[Target, T]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget_secs
        chain = self.chain(request)
        last: ProviderError | None = None
        for index, candidate in enumerate(chain):
            try:
                target = self.target(candidate)
            except ProviderError as exc:  # an unregistered provider: the next candidate may do
                last = exc
                attempts.append(Attempt(candidate, exc.code))
                continue
            except ChatError as exc:
                if index == 0:
                    raise  # the caller's own model string is at fault: a 400, never a fallback
                attempts.append(Attempt(candidate, exc.code))  # a configured fallback tier left empty
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                result = await call(target, min(remaining, self.attempt_secs or remaining))
            except ProviderError as exc:
                last = exc
                attempts.append(Attempt(candidate, exc.code, target.routed))
                if not exc.fallback:
                    raise _chain_error(exc, attempts) from None
                continue
            attempts.append(Attempt(candidate, "ok", target.routed))
            return target, result
        if last is None or len(attempts) < len(chain):
            last = ProviderError("upstream_timeout", f"no answer within the {self.budget_secs:g}s budget")
        raise _chain_error(last, attempts)


def _chain_error(error: ProviderError, attempts: list[Attempt]) -> ProviderError:
    if len(attempts) <= 1:
        return error
    tried = ", ".join(f"{a.candidate} → {a.outcome}" for a in attempts)
    return ProviderError(error.code, f"{error.message} (tried {tried})", fallback=False, headers=error.headers)
