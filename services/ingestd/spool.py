"""The upload's bytes on local disk while they arrive, readable by a parser thread as they land.

Why a spool rather than a pipe: pyarrow infers types from the first block and reports a bad value without naming the
line (NDJSON) or reports it only by row; with the bytes on disk the error path can rescan them to say exactly where
the problem is, the NDJSON reader can be reopened with the schema it inferred (so a field first seen later is an error,
not silently dropped), and a Parquet upload (whose footer is at the end) needs random access anyway. The disk used is
bounded by `max_ingest_bytes`, the file is unlinked when the ingest ends, and the parser still runs while the body
is arriving: `SpoolReader.read` blocks until the writer has appended enough bytes or finished.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path


class SpoolAborted(Exception):
    """The upload stopped before its end (too large, client gone): the parser thread gives up."""


class Spool:
    """An append-only temp file shared by one writer (the request) and readers (the parser thread)."""

    def __init__(self, directory: str | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".spool", dir=directory or None)
        self.fd = fd
        self.path = Path(name)
        self.size = 0
        self.finished = False
        self.aborted = False
        self._changed = threading.Condition()

    def append(self, data: bytes) -> None:
        """Write `data` at the end (blocking file I/O: call it from a worker thread)."""
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, self.size)
            view = view[written:]
            with self._changed:
                self.size += written
                self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self.finished = True
            self._changed.notify_all()

    def abort(self) -> None:
        with self._changed:
            self.aborted = True
            self._changed.notify_all()

    def wait_for(self, end: int) -> int:
        """Block until `end` bytes are there or the upload finished; the size available (raises if aborted)."""
        with self._changed:
            while self.size < end and not self.finished and not self.aborted:
                self._changed.wait()
            if self.aborted:
                raise SpoolAborted("the upload was aborted")
            return self.size

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def reader(self) -> SpoolReader:
        return SpoolReader(self)

    def close(self) -> None:
        """Release the file; safe to call twice."""
        self.abort()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)


class SpoolReader:
    """A read-only, forward file object over a spool still being written (what pyarrow's readers pull from)."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._pos = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            while not self._spool.finished:
                self._spool.wait_for(self._spool.size + 1)
            size = self._spool.size - self._pos
        available = self._spool.wait_for(self._pos + size)
        data = self._spool.pread(min(size, available - self._pos), self._pos)
        self._pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self.closed = True
