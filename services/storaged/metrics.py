"""storaged's own metrics: object bytes received and sent, per backend, on the service's /metrics."""

from __future__ import annotations

from prometheus_client import Counter

from shared.telemetry.metrics import Metrics


class StorageMetrics:
    """storaged's byte counters: bodies received (`in`, puts) and sent (`out`, gets), per backend."""

    def __init__(self, metrics: Metrics, backend: str) -> None:
        counter = Counter(
            "lakehouse_storage_bytes",
            "Object bytes received (in) and sent (out)",
            ("backend", "direction"),
            registry=metrics.register_to,
        )
        self.bytes_in = counter.labels(backend, "in")
        self.bytes_out = counter.labels(backend, "out")

    def received(self, count: int) -> None:
        self.bytes_in.inc(count)

    def sent(self, count: int) -> None:
        self.bytes_out.inc(count)
