"""chatd's own metrics: per-provider calls, errors by code, and tokens, on the service's /metrics."""

from __future__ import annotations

from prometheus_client import Counter

from shared.telemetry.metrics import Metrics


class ProviderMetrics:
    """chatd's per-provider counters: requests, errors by code, tokens by kind (prompt, completion)."""

    def __init__(self, metrics: Metrics) -> None:
        self.requests = Counter(
            "lakehouse_chat_requests", "Chat calls per provider", ("provider",), registry=metrics.register_to
        )
        self.errors = Counter(
            "lakehouse_chat_errors",
            "Failed chat calls per provider and error code",
            ("provider", "code"),
            registry=metrics.register_to,
        )
        self.tokens = Counter(
            "lakehouse_chat_tokens",
            "Tokens per provider, prompt and completion",
            ("provider", "kind"),
            registry=metrics.register_to,
        )

    def record(
        self,
        provider: str,
        *,
        error: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        self.requests.labels(provider).inc()
        if error is not None:
            self.errors.labels(provider, error).inc()
        if prompt_tokens:
            self.tokens.labels(provider, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(provider, "completion").inc(completion_tokens)
