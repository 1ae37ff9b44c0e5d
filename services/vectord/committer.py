"""Group commit: every change waits for the next log write, and all changes that arrived meanwhile share it.

Changes are applied after their record is durable, in log order, so what a reader sees is always something a
restart would rebuild. With no log (storaged_url empty) the same path applies the changes directly.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import anyio
import structlog

from services.vectord.ops import Op
from services.vectord.store import Applied, Store
from shared.errors import LakehouseError


class Log(Protocol):
    async def append(self, ops: list[Op]) -> None: ...

    async def after_apply(self, store: Store) -> None: ...

    async def when_idle(self, store: Store) -> None: ...


Pending = tuple[Op, asyncio.Future[Applied]]


def apply_all(store: Store, ops: list[Op]) -> list[Applied | LakehouseError]:
    results: list[Applied | LakehouseError] = []
    for op in ops:
        try:
            results.append(store.apply(op))
        except LakehouseError as exc:
            results.append(exc)
    return results


class Committer:
    def __init__(self, store: Store, log: Log | None, *, idle_secs: float = 0.0) -> None:
        """`idle_secs` without a change, the log is told so (it snapshots what it holds); 0 = never."""
        self.store = store
        self.log = log
        self.idle_secs = idle_secs
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(LakehouseError("service_unavailable", "vectord is stopping; nothing was saved"))

    async def submit(self, op: Op) -> Applied:
        """Log and apply `op`; returns once it is durable (when a log is configured) and applied."""
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        # If the caller went away, its op's failure is still retrieved (not logged as "never retrieved").
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._pending.append((op, future))
        self._wakeup.set()
        # Shielded: a client that goes away does not take its op out of a batch already being written.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        log = structlog.get_logger("vectord")
        while True:
            try:
                # Between batches, like every checkpoint: a snapshot is then exactly the state after the last record.
                await asyncio.wait_for(self._wakeup.wait(), self.idle_secs if self.log and self.idle_secs else None)
            except TimeoutError:
                if self.log is not None:
                    try:
                        await self.log.when_idle(self.store)
                    except LakehouseError as exc:
                        log.warning("checkpoint failed", error=exc.message)
                continue
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            ops = [op for op, _ in batch]
            if self.log is not None:
                try:
                    await self.log.append(ops)
                except LakehouseError as exc:
                    log.warning("log write failed", ops=len(ops), error=exc.message)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
            results = await anyio.to_thread.run_sync(apply_all, self.store, ops)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, LakehouseError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self.log is not None:
                try:
                    await self.log.after_apply(self.store)
                except LakehouseError as exc:
                    log.warning("checkpoint failed", error=exc.message)
