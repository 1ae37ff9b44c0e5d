"""The spend ledger's spool: one JSON line per chat request, written before its answer is complete.

A line is one `write` to a file opened for appending, so once a client has its answer the record is in the page
cache: killing any process, chatd included, loses none (a power cut may lose what was not yet shipped; the shipper
syncs each segment before it ships). The shipper (services/chatd/shipper.py) seals the current segment now and
then, and turns sealed segments into the `spend` dataset.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

CURRENT = "current.jsonl"
SEALED_PREFIX = "sealed-"


class SpendRecord(BaseModel):
    """One chat request, as the ledger keeps it (the columns of the `spend` dataset, in order)."""

    model_config = ConfigDict(extra="forbid")

    ts: datetime
    request_id: str
    key_id: str | None  # None: the root token
    key_name: str
    api: str  # "openai" or "native"
    requested: str  # the model or tier the request named
    model: str | None  # the routed model that answered (provider/model); None when none did
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    status: str  # "ok" or the error code
    stream: bool
    fallback: bool  # answered by a candidate after the first


SPEND_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("request_id", pa.string()),
        ("key_id", pa.string()),
        ("key_name", pa.string()),
        ("api", pa.string()),
        ("requested", pa.string()),
        ("model", pa.string()),
        ("provider", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("latency_ms", pa.float64()),
        ("status", pa.string()),
        ("stream", pa.bool_()),
        ("fallback", pa.bool_()),
    ]
)
assert SPEND_SCHEMA.names == list(SpendRecord.model_fields), "the dataset's columns are the record's fields"


def table_of(lines: bytes) -> pa.Table:
    """The records of a segment's bytes; a torn last line (a crash mid-write) is left out."""
    rows = []
    for line in lines.splitlines():
        try:
            rows.append(SpendRecord.model_validate_json(line))
        except ValueError:
            continue
    columns = {name: [getattr(row, name) for row in rows] for name in SPEND_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=SPEND_SCHEMA)


class Spool:
    """The segments under `directory`: the one being appended to, and the sealed ones waiting to ship."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self.written = 0  # records appended to the current segment

    def _open(self) -> int:
        return os.open(self.directory / CURRENT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, record: SpendRecord) -> None:
        # One small write to the page cache (microseconds) keeps a record on the request path without waiting on
        # the disk; the shipper's fsync is what covers a power cut.
        os.write(self._fd, orjson.dumps(record.model_dump(mode="json")) + b"\n")
        self.written += 1

    def seal(self) -> int | None:
        """Rename the current segment to a sealed name (if it holds anything) and append to a new one; the old
        segment's descriptor, for the caller to fsync and close off the event loop (`settle`)."""
        if os.fstat(self._fd).st_size == 0:
            return None
        os.rename(self.directory / CURRENT, self.directory / f"{SEALED_PREFIX}{time.time_ns():020d}.jsonl")
        old, self._fd = self._fd, self._open()
        self.written = 0
        return old

    def sealed(self) -> list[Path]:
        return sorted(self.directory.glob(f"{SEALED_PREFIX}*.jsonl"))

    def close(self) -> None:
        os.close(self._fd)


def settle(fd: int) -> None:
    """A sealed segment to disk, then closed: blocking, so the shipper runs it on a thread."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now() -> datetime:
    return datetime.now(UTC)
