"""DuckDB in-process: a sandboxed database per state of the catalog, a view per dataset, a cursor per query.

The sandbox is DuckDB's own: httpfs is loaded from the PyPI extension package first, then external access is turned
off except for exactly the data files of the catalogued datasets (`allowed_paths`, each file under the local object
root or in `s3://bucket/`; no directory is allowed, so no glob of the root, no manifest, no vectord snapshot, no
object outside the catalog), and the configuration is locked so no SQL can undo it. A query runs only the one
reading statement classify.py finds in its SQL, parsed once on the query's own cursor.

DuckDB checks a view's files when a query binds it, against the settings of that moment, and once the sandbox is
up `allowed_paths` can be changed neither by a locked configuration nor, unlocked, while external access is off
(measured on duckdb 1.5.5). So the allowed files are fixed per database: when the catalog changes, a new
`Generation` (database, sandbox, views) is built and swapped in, and queries already running finish on the old
one, whose database DuckDB frees when its last cursor closes. A refresh costs a new database with every view made
again (measured ~60 ms for 20 one-file datasets, off the event loop) and the footers cached by the old one; while
two generations live, each has its own memory_limit and threads.

Answers never carry a server path: errors have the object root replaced by nothing (leaving the object key) and
the spill directory by a placeholder; classify.py refuses the functions and tables that would show settings or
view definitions.
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
from services.storaged.schemas import local_object_path
from shared.errors import LakehouseError, StartupFailed

BATCH_ROWS = 122_880  # a multiple of DuckDB's 2048-row vectors
# DuckDB expands these in a path: an allowed path holding one would let SQL read every file it matches.
GLOB_CHARACTERS = "*?[{"


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


@dataclass
class Generation:
    """One sandboxed database: SQL may read exactly its views' files, fixed when it was built."""

    con: duckdb.DuckDBPyConnection
    views: dict[str, View]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(name: str) -> tuple[str | None, str]:
    """(schema, view) of a dataset's SQL name: an Iceberg table `t` of namespace `a.b` is dataset `a.b.t`, the view
    `"a.b".t`; a dataset of namespace lakehouse (no dot) is a view in the default schema."""
    schema, dot, view = name.rpartition(".")
    return (schema if dot else None), view


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
        self._root = str(data_root.resolve()).rstrip("/") + "/" if data_root is not None else None
        self._spill = Path(tempfile.mkdtemp(prefix="queryd-spill-"))
        self._config: dict[str, Any] = {
            "threads": threads,
            "memory_limit": memory_limit,
            # Nothing is ever fetched from the network at run time (air-gapped boxes): httpfs comes from PyPI.
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        self._httpfs = httpfs_extension_path()
        self._lock = threading.Lock()
        self._built = 0
        self._current = self._build([])[0]
        self.watchdog = Watchdog()

    @property
    def views(self) -> dict[str, View]:
        return self._current.views

    def _build(self, views: Sequence[View]) -> tuple[Generation, dict[str, str]]:
        """A new sandboxed database whose SQL may read exactly the files of `views`; {name: error} of refused ones."""
        self._built += 1
        # A directory of its own, made and removed by DuckDB: closing one generation never touches another's spill.
        spill = self._spill / f"g{self._built}"
        con = duckdb.connect(":memory:", config={**self._config, "temp_directory": str(spill)})
        try:
            con.execute(f"LOAD {_literal(str(self._httpfs))}")
            if self.s3 is not None:
                self._s3_secret(con, self.s3)
            refused = {v.name: v for v in views if any(c in f for f in v.files for c in GLOB_CHARACTERS)}
            views = [v for v in views if v.name not in refused]
            files = sorted({self.location(f) for view in views for f in view.files})
            con.execute("SET allowed_paths = [" + ", ".join(_literal(f) for f in files) + "]")
            # Each file's Parquet footer is parsed once, not on every query (~0.6 ms of a small query on a 10M-row
            # file of 77 row groups). Dataset files never change once written, and DuckDB still checks a cached
            # footer against its file; its object cache is an LRU bounded by memory. GLOBAL: a cursor is a new
            # connection.
            con.execute("SET GLOBAL parquet_metadata_cache = true")
            con.execute("SET enable_external_access = false")
            made: dict[str, View] = {}
            failed = {name: "a file key holds a glob character (* ? [ {)" for name in refused}
            for view in views:
                listed = ", ".join(_literal(self.location(f)) for f in view.files)
                schema, leaf = _qualified(view.name)
                target = _quote(leaf) if schema is None else f"{_quote(schema)}.{_quote(leaf)}"
                try:
                    if schema is not None:
                        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
                    # union_by_name: an Iceberg table's files may predate a column added since (null there).
                    con.execute(f"CREATE VIEW {target} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
                except duckdb.Error as exc:
                    failed[view.name] = self.scrub(str(exc))
                    continue
                made[view.name] = view
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return Generation(con, made), failed

    @staticmethod
    def _s3_secret(con: duckdb.DuckDBPyConnection, s3: S3Access) -> None:
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
        con.execute("CREATE SECRET lakehouse_s3 (TYPE s3, " + ", ".join(f"{k} {v}" for k, v in options.items()) + ")")

    def location(self, key: str) -> str:
        """Where DuckDB reads an object key: under the local root, or in the S3 bucket."""
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{key}"
        assert self._root is not None
        return local_object_path(self._root, key)  # the root resolved once, at start

    def scrub(self, message: str) -> str:
        """`message` without the server's paths: a file under the root is named by its object key."""
        if self._root is not None:
            message = message.replace(self._root, "")
            if self.data_root is not None:
                message = message.replace(str(self.data_root).rstrip("/") + "/", "")
        return message.replace(str(self._spill), "<spill directory>").replace(str(Path.home()), "~")

    def set_views(self, views: Sequence[View]) -> dict[str, str]:
        """Make the views exactly `views` (blocking: call off the event loop); {name: error} for those DuckDB refused.

        A refused view keeps its previous version, if it had one, so one bad dataset never hides the others.
        """
        with self._lock:
            current = self._current.views
            if {v.name: v for v in views} == current:
                return {}
            generation, failed = self._build(views)
            kept = [current[name] for name in failed if name in current]
            if kept:
                # The previous versions' files must be allowed too, and allowed paths are fixed per database.
                retry = [v for v in views if v.name not in failed] + kept
                generation, refused = self._build(retry)
                failed = {**failed, **refused}
            # The old database is dropped, not closed: queries still running on it keep their cursors, and DuckDB
            # frees it with the last one.
            self._current = generation
        return failed

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._current.con.cursor()

    def close(self) -> None:
        self.watchdog.close()
        self._current.con.close()
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
        message = self.engine.scrub(str(exc))
        if isinstance(exc, duckdb.PermissionException):
            # The file is named already; DuckDB's excerpt of the SQL after it ("LINE 1: ...") is cut at a width,
            # so it can hold a part of the root that the replacement above cannot recognise.
            return LakehouseError("forbidden", message.partition("\n\nLINE ")[0])
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
