"""Keeping one DuckDB view per catalog dataset: poll catalogd's list (ETag, so an unchanged catalog costs a 304),
fetch the manifests whose version moved, and swap the views in one step off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import anyio
import anyio.to_thread
import structlog

from services.catalogd.client import CatalogdClient, CatalogError
from services.queryd.engine import Engine, View


class ViewRefresher:
    def __init__(self, engine: Engine, catalog: CatalogdClient) -> None:
        self.engine = engine
        self.catalog = catalog
        self.etag: str | None = None
        self.polled_at = -math.inf  # monotonic time of the last answered poll
        self._lock = asyncio.Lock()
        self.log = structlog.get_logger("queryd")

    async def refresh(self, *, force: bool = False) -> bool:
        """Bring the views up to date with the catalog; True if anything changed. Raises CatalogError."""
        async with self._lock:
            poll = await self.catalog.poll_datasets(None if force else self.etag)
            self.polled_at = time.monotonic()
            if not poll.changed:
                return False
            current = self.engine.views
            views: list[View] = []
            for summary in poll.datasets:
                known = current.get(summary.name)
                if known is not None and known.version == summary.version:
                    views.append(known)
                    continue
                if summary.error is not None:
                    self._unreadable(summary.name, summary.error, known, views)
                    continue
                try:
                    manifest = await self.catalog.get_manifest(summary.name)
                except CatalogError as exc:
                    if exc.code == "corrupt_manifest":  # it went bad between the listing and now
                        self._unreadable(summary.name, exc.message, known, views)
                        continue
                    if exc.code != "not_found":
                        raise
                    continue  # deleted between the listing and now
                if not manifest.files:
                    self.log.warning("dataset has no files; no view", dataset=manifest.name)
                    continue
                views.append(View(manifest.name, manifest.version, tuple(f.key for f in manifest.files)))
            failed = await anyio.to_thread.run_sync(self.engine.set_views, views)
            for name, error in failed.items():
                self.log.error("view not refreshed", dataset=name, error=error)
            self.etag = poll.etag
            return True

    def _unreadable(self, name: str, error: str, known: View | None, views: list[View]) -> None:
        # One unreadable manifest must not take the others down; the last good version beats no view at all.
        if known is not None:
            views.append(known)
        self.log.error(
            "dataset manifest unreadable", dataset=name, kept_version=known.version if known else None, error=error
        )

    async def ensure_fresh(self, max_age_secs: float) -> None:
        """Poll the catalog unless a poll answered within `max_age_secs` (an unchanged catalog costs a 304): what an
        engine committed is in SQL a second later, not a poll interval later. A catalogd that does not answer
        leaves the views as they are."""
        if time.monotonic() - self.polled_at <= max_age_secs:
            return
        self.polled_at = time.monotonic()  # a catalogd that is down is tried once per interval, not per query
        with contextlib.suppress(CatalogError):
            await self.refresh()

    async def refresh_logged(self) -> None:
        """refresh(), with a catalogd outage or a refused view logged instead of raised (startup, the poller)."""
        try:
            await self.refresh()
        except CatalogError as exc:
            self.log.warning("view refresh failed", error=str(exc))
        except Exception as exc:
            self.log.error("view refresh failed", error=f"{type(exc).__name__}: {exc}")

    async def run_every(self, seconds: float) -> None:
        """The background loop: sleep, refresh, repeat; never fatal."""
        while True:
            await asyncio.sleep(seconds)
            await self.refresh_logged()
