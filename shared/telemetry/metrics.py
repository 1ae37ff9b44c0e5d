"""Prometheus metrics: every app's request counters and GET /metrics, across forked gateway workers too.

A single-process service keeps its metrics in its own registry. The forked gateway workers share one per-run
directory (prometheus-client's multiprocess mode, `multiprocess_dir`): each worker writes its values to mmap'd files
there and whichever worker answers a scrape sums them all, so the numbers add up across workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROCESS_PREFIX = "lakehouse-metrics-"
# Seconds; from a proxied hello (~0.1 ms) to a slow chat completion.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Set by the gateway's proxy in the request scope: the family forwarded to, and an upstream failure's kind.
FAMILY_KEY = "lakehouse.family"
UPSTREAM_ERROR_KEY = "lakehouse.upstream_error"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_dirs(root: Path) -> None:
    """Remove the directories of runs whose parent process is gone (it was killed before it could clean up)."""
    for entry in root.glob(f"{MULTIPROCESS_PREFIX}*-*"):
        pid = entry.name.removeprefix(MULTIPROCESS_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh directory for one run of forked workers' metrics, named in the environment the workers inherit,
    and removed when they are all gone (a new run never sums a previous run's files). It is named after this
    process, so a later run can remove it if this one is killed outright."""
    path = tempfile.mkdtemp(prefix=f"{MULTIPROCESS_PREFIX}{os.getpid()}-")
    sweep_stale_dirs(Path(path).parent)
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def _use_multiprocess_values() -> None:
    # prometheus-client picks its value class when first imported; a worker forked from a parent that had already
    # imported it must switch explicitly, or each worker would count only its own requests.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class Metrics:
    """One app's metrics. `family=True` (the gateway) adds a `family` label and counts upstream errors by kind."""

    def __init__(self, service: str, *, family: bool = False) -> None:
        self.service = service
        self.multiprocess_path = os.environ.get(MULTIPROCESS_ENV, "")
        if self.multiprocess_path:
            _use_multiprocess_values()
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("service", "route", "method", "status", *(("family",) if family else ()))
        self.requests = Counter("lakehouse_http_requests", "HTTP requests answered", labels, registry=self.register_to)
        self.duration = Histogram(
            "lakehouse_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.register_to,
        )
        self.upstream_errors = (
            Counter(
                "lakehouse_gateway_upstream_errors",
                "Upstream failures seen by the gateway, by family and kind",
                ("family", "kind"),
                registry=self.register_to,
            )
            if family
            else None
        )
        self.family = family
        self._children: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    @property
    def register_to(self) -> CollectorRegistry | None:
        """The registry new metrics of this app join (None in multiprocess mode: the files are the registry)."""
        return None if self.multiprocess_path else self.registry

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Count one answered request; called by the access-log middleware when the response is done."""
        route = scope.get("route")
        method = scope["method"]
        if method not in METHODS:
            # Any other method string a client sends is counted as "other", so a client cannot grow the label set.
            method = "other"
        family = scope.get(FAMILY_KEY, "") if self.family else None
        # Keyed by the route (its identity: the app holds its routes for life) and the raw values, so the label
        # strings are built once per combination.
        key = (id(route), method, status, family)
        children = self._children.get(key)
        if children is None:
            labels = self._labels(route, method, status, family)
            children = self._children[key] = (
                self.requests.labels(self.service, *labels),
                self.duration.labels(self.service, *labels),
            )
        children[0].inc()
        children[1].observe(seconds)
        if self.upstream_errors is not None and UPSTREAM_ERROR_KEY in scope:
            self.upstream_errors.labels(scope.get(FAMILY_KEY, ""), scope[UPSTREAM_ERROR_KEY]).inc()

    @staticmethod
    def _labels(route: Any, method: str, status: int, family: str | None) -> tuple[str, ...]:
        if family is None:
            return (getattr(route, "path", UNMATCHED), method, str(status))
        template = f"/v1/{family}/{{path:path}}" if family else getattr(route, "path", UNMATCHED)
        return (template, method, str(status), family)

    def exposition(self) -> bytes:
        if not self.multiprocess_path:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def metrics_route(metrics: Metrics) -> Route:
    async def scrape(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])
