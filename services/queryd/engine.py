"""DuckDB in-process: one sandboxed database, a view per dataset, a cursor per query with a deadline.

The sandbox is DuckDB's own: httpfs is loaded from the PyPI extension package first, then external access is turned
off except for the lakehouse's own data (`allowed_directories`: the local object root or `s3://bucket/`), and the
configuration is locked so no SQL can undo it. A query runs only the one reading statement classify.py finds in its
SQL, parsed once on the query's own cursor.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib.util
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import structlog

from services.queryd.classify import read_only_statement
from shared.errors import LakehouseError
from shared.server.startup import StartupFailed

BATCH_ROWS = 122_880  # a multiple of DuckDB's 2048-row vectors


class StartupError(StartupFailed):
    """queryd cannot start; the message is the one line the operator needs."""


def httpfs_extension_path() -> Path:
    """The httpfs extension from PyPI's duckdb-extension-httpfs package, built for exactly this DuckDB."""
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    version = duckdb.__version__
    hint = f"install it with `uv add duckdb-extension-httpfs=={version}` (it must match duckdb {version} exactly)"
    if spec is None or not spec.submodule_search_locations:
        raise StartupError(f"the DuckDB httpfs extension package is not installed; {hint}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "extensions" / f"v{version}" / "httpfs.duckdb_extension"
        if path.is_file():
            return path
    raise StartupError(f"duckdb-extension-httpfs holds no httpfs for duckdb v{version}; {hint}")


class UnknownTable(LakehouseError):
    """A query named a table (dataset) that has no view (yet)."""


@dataclass(frozen=True)
class S3Access:
    bucket: str
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    use_path_style: bool


@dataclass(frozen=True)
class View:
    """A dataset as queryd serves it: its catalog version and the files the view reads."""

    name: str
    version: int
    files: tuple[str, ...]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Deadline:
    """One entry of the Watchdog: `action` runs at `when` unless cancelled first."""

    __slots__ = ("action", "when")

    def __init__(self, when: float, action: Callable[[], None]) -> None:
        self.when = when
        self.action: Callable[[], None] | None = action

    def __lt__(self, other: Deadline) -> bool:
        return self.when < other.when


class Watchdog:
    """One thread that runs each deadline's action when it passes (a query's interrupt).

    A threading.Timer per query started and stopped a thread for every query, about 0.2 ms on a small query's path;
    here a query costs a heap push and a flag. Cancelled entries stay in the heap until they come up (or until they
    are most of it), so a cancel never wakes the thread, and neither does a deadline later than the earliest one.
    """

    COMPACT_AT = 1024  # cancelled entries tolerated before the heap is rebuilt without them

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._cancelled = 0
        self._closed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="queryd-deadlines", daemon=True)
        self._thread.start()

    def schedule(self, seconds: float, action: Callable[[], None]) -> Deadline:
        deadline = Deadline(time.monotonic() + seconds, action)
        with self._wake:
            heapq.heappush(self._heap, deadline)
            if self._heap[0] is deadline:
                self._wake.notify()  # the thread sleeps until an earlier deadline (or forever): it must look again
        return deadline

    def cancel(self, deadline: Deadline) -> None:
        with self._wake:
            if deadline.action is None:
                return
            deadline.action = None
            self._cancelled += 1
            if self._cancelled > self.COMPACT_AT and self._cancelled * 2 > len(self._heap):
                self._heap = [d for d in self._heap if d.action is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            due: list[Callable[[], None]] = []
            with self._wake:
                if self._closed:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0].when <= now:
                    deadline = heapq.heappop(self._heap)
                    if deadline.action is None:
                        self._cancelled -= 1
                    else:
                        due.append(deadline.action)
                        deadline.action = None
                if not due:
                    self._wake.wait(self._heap[0].when - now if self._heap else None)
            for action in due:  # outside the lock: an interrupt must not hold up scheduling
                try:
                    action()
                except Exception as exc:  # one failed action must not end the thread every deadline relies on
                    structlog.get_logger("queryd").error("deadline action failed", error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()


class Engine:
    def __init__(
        self,
        *,
        threads: int,
        memory_limit: str,
        data_root: Path | None,
        s3: S3Access | None,
    ) -> None:
        self.data_root = data_root
        self.s3 = s3
        self._spill = Path(tempfile.mkdtemp(prefix="queryd-spill-"))
        config: dict[str, Any] = {
            "threads": threads,
            "memory_limit": memory_limit,
            "temp_directory": str(self._spill),
            # Nothing is ever fetched from the network at run time (air-gapped boxes): httpfs comes from PyPI.
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        self._con = duckdb.connect(":memory:", config=config)
        self._lock = threading.Lock()
        self.views: dict[str, View] = {}
        self._sandbox(httpfs_extension_path())
        self.watchdog = Watchdog()

    def _sandbox(self, httpfs: Path) -> None:
        con = self._con
        con.execute(f"LOAD {_literal(str(httpfs))}")
        allowed: list[str] = []
        if self.data_root is not None:
            allowed.append(str(self.data_root.resolve()).rstrip("/") + "/")
        if self.s3 is not None:
            s3 = self.s3
            endpoint = s3.endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
            options = {
                "KEY_ID": _literal(s3.access_key_id),
                "SECRET": _literal(s3.secret_access_key),
                "REGION": _literal(s3.region),
                # httpfs wants host:port here; the scheme goes in USE_SSL (an http:// prefix would be doubled).
                "ENDPOINT": _literal(endpoint),
                "URL_STYLE": _literal("path" if s3.use_path_style else "vhost"),
                "USE_SSL": "true" if s3.endpoint.startswith("https://") else "false",
            }
            con.execute(
                "CREATE SECRET lakehouse_s3 (TYPE s3, " + ", ".join(f"{k} {v}" for k, v in options.items()) + ")"
            )
            allowed.append(f"s3://{s3.bucket}/")
        con.execute("SET allowed_directories = " + "[" + ", ".join(_literal(a) for a in allowed) + "]")
        # Each file's Parquet footer is parsed once, not on every query (~0.6 ms of a small query on a 10M-row file
        # of 77 row groups). Dataset files never change once written, and DuckDB still checks a cached footer against
        # its file; its object cache is an LRU bounded by memory. GLOBAL: a cursor is a new connection.
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def location(self, key: str) -> str:
        """Where DuckDB reads an object key: under the local root, or in the S3 bucket."""
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{key}"
        assert self.data_root is not None
        return str(self.data_root.resolve() / key)

    def set_views(self, views: Sequence[View]) -> dict[str, str]:
        """Make the views exactly `views` (blocking: call off the event loop); {name: error} for those DuckDB refused.

        A refused view keeps its previous version, if it had one, so one bad dataset never hides the others.
        """
        wanted = {v.name: v for v in views}
        failed: dict[str, str] = {}
        with self._lock:
            for view in views:
                if self.views.get(view.name) == view:
                    continue
                files = ", ".join(_literal(self.location(f)) for f in view.files)
                try:
                    self._con.execute(
                        f"CREATE OR REPLACE VIEW {_quote(view.name)} AS SELECT * FROM read_parquet([{files}])"
                    )
                except duckdb.Error as exc:
                    failed[view.name] = str(exc)
                    continue
                self.views[view.name] = view
            for name in [n for n in self.views if n not in wanted]:
                self._con.execute(f"DROP VIEW IF EXISTS {_quote(name)}")
                del self.views[name]
        return failed

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def close(self) -> None:
        self.watchdog.close()
        self._con.close()
        shutil.rmtree(self._spill, ignore_errors=True)


class Query:
    """One query on its own cursor, interrupted when its deadline passes (blocking methods: run off the loop)."""

    def __init__(self, engine: Engine, sql: str, params: list[Any] | None, timeout_secs: float) -> None:
        self.engine = engine
        self.sql = sql
        self.params = params
        self.timeout_secs = timeout_secs
        # Made in start(), on the worker thread: a cursor is a DuckDB connection, not free to set up.
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.timed_out = False
        self._deadline: Deadline | None = None
        self.reader: pa.RecordBatchReader | None = None  # made by the first next_batch
        self.columns: list[dict[str, str]] = []
        self.type_ids: list[str] = []  # DuckDB's type ids ("bigint", "decimal", ...), column by column

    def _interrupt(self) -> None:
        self.timed_out = True
        assert self.cursor is not None  # the deadline is set once the cursor exists
        with contextlib.suppress(duckdb.Error):  # the query may have just finished and closed
            self.cursor.interrupt()

    def start(self) -> None:
        """Classify the SQL (400 unless one reading statement) and run it (blocking: call off the event loop)."""
        self.cursor = self.engine.cursor()
        # Parsed once, on this query's own cursor: what runs is exactly the statement classified.
        statement = read_only_statement(self.sql, self.cursor)
        self._deadline = self.engine.watchdog.schedule(self.timeout_secs, self._interrupt)
        try:
            self.cursor.execute(statement, self.params)
            description = self.cursor.description or []
        except duckdb.Error as exc:
            raise self.error(exc) from None
        self.columns = [{"name": d[0], "type": str(d[1])} for d in description]
        self.type_ids = [d[1].id for d in description]

    def next_batch(self) -> pa.RecordBatch | None:
        """The next Arrow batch of the result (None at its end)."""
        assert self.cursor is not None
        try:
            if self.reader is None:
                self.reader = self.cursor.to_arrow_reader(BATCH_ROWS)
            return self.reader.read_next_batch()
        except StopIteration:
            return None
        except (duckdb.Error, pa.ArrowException) as exc:
            raise self.error(exc) from None

    def fetch_rows(self, count: int) -> list[tuple[Any, ...]]:
        """Up to `count` rows as DuckDB's Python values, instead of Arrow batches (not both for one query)."""
        assert self.cursor is not None
        try:
            rows: list[tuple[Any, ...]] = self.cursor.fetchmany(count)
        except duckdb.Error as exc:
            raise self.error(exc) from None
        return rows

    def error(self, exc: Exception) -> LakehouseError:
        if self.timed_out:
            return LakehouseError("query_timeout", f"query interrupted after query_timeout_secs={self.timeout_secs:g}")
        message = str(exc)
        if isinstance(exc, duckdb.PermissionException):
            return LakehouseError("forbidden", message)
        if isinstance(exc, duckdb.OutOfMemoryException):
            return LakehouseError("invalid_request", f"the query needs more memory than memory_limit allows: {message}")
        if isinstance(exc, duckdb.CatalogException) and "does not exist" in message:
            known = ", ".join(sorted(self.engine.views)) or "none yet"
            return UnknownTable("invalid_request", f"{message}\ndatasets: {known}")
        return LakehouseError("invalid_request", message)

    def close(self) -> None:
        if self._deadline is not None:
            self.engine.watchdog.cancel(self._deadline)
        if self.cursor is not None:
            self.cursor.close()
