"""The index of a log saved next to it (`<log>.idx`), so a big log starts in seconds instead of being re-parsed.

A snapshot covers the first `covered` bytes of the log and records their CRC-32. At startup the prefix is read and
checked against it (reading 1 GiB takes well under a second; parsing it takes minutes of CPU): any difference —
a damaged line, an edited file — and the snapshot is ignored and the whole log replayed, so damage is still found
and named. Only the lines after the covered prefix are parsed. Snapshots are written when the log closes cleanly
and after a start that had to parse a long tail; a crash between them only costs a longer replay.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shared.jsonlog.index import KeyStats, LogIndex, LogSpec

VERSION = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    covered: int  # bytes of the log it indexes
    crc: int  # CRC-32 of those bytes
    lines: int  # lines in those bytes, so errors after them still name the right line
    arrays: dict[str, np.ndarray[Any, Any]]
    meta: dict[str, Any]


def snapshot_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + ".idx")


def _spec_key(spec: LogSpec) -> list[Any]:
    return [list(spec.tags), spec.number, spec.unique, list(spec.counted)]


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """What a snapshot covers, captured on the event loop; rows below `rows` never change, so a thread can save them."""

    rows: int
    covered: int
    crc: int
    lines: int
    values: dict[str, list[str]]
    stats: dict[str, list[list[int]]]


def capture(index: LogIndex, *, rows: int, covered: int, crc: int, lines: int) -> SnapshotState:
    return SnapshotState(
        rows=rows,
        covered=covered,
        crc=crc,
        lines=lines,
        values={name: list(tag.values) for name, tag in index.tags.items()},
        stats={
            name: [[code, s.count, s.first_ts, s.last_ts] for code, s in tag.stats.items()]
            for name, tag in index.tags.items()
            if tag.stats is not None
        },
    )


def write_snapshot(log_path: Path, index: LogIndex, state: SnapshotState) -> None:
    """Save the index of the first `state.rows` rows; atomic, so a crash leaves the old snapshot or none."""
    n = state.rows
    arrays = {"offsets": index.offsets.view(n), "lengths": index.lengths.view(n), "ts": index.ts.view(n)}
    for name, tag in index.tags.items():
        arrays[f"tag.{name}"] = tag.codes.view(n)
    if index.number is not None:
        arrays["number"] = index.number.view(n)
    meta = {
        "version": VERSION,
        "spec": _spec_key(index.spec),
        "covered": state.covered,
        "crc": state.crc,
        "lines": state.lines,
        "count": n,
        "values": state.values,
        "stats": state.stats,
        "keys": index.keys[:n],
    }
    arrays["meta"] = np.frombuffer(orjson.dumps(meta), dtype=np.uint8)
    target = snapshot_path(log_path)
    temporary = target.with_name(target.name + ".tmp")
    with temporary.open("wb") as file:
        np.savez(file, allow_pickle=False, **arrays)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, target)


def read_snapshot(log_path: Path, spec: LogSpec) -> tuple[Snapshot | None, str]:
    """The snapshot if it exists and fits this log and spec; otherwise None and why (empty when there is none)."""
    path = snapshot_path(log_path)
    if not path.exists():
        return None, ""
    try:
        # numpy leaves the file open when the archive is damaged, so the file is opened (and closed) here.
        with path.open("rb") as file, np.load(file, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = orjson.loads(arrays.pop("meta").tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, orjson.JSONDecodeError) as exc:
        return None, f"unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("version") != VERSION or meta.get("spec") != _spec_key(spec):
        return None, "written for another version or log layout"
    if any(len(array) != meta["count"] for array in arrays.values()) or len(meta["keys"]) not in (0, meta["count"]):
        return None, "its arrays disagree with its count"
    if meta["covered"] > log_path.stat().st_size:
        return None, "covers more than the log holds"
    return Snapshot(meta["covered"], meta["crc"], meta["lines"], arrays, meta), ""


def restore(index: LogIndex, snapshot: Snapshot) -> None:
    """Fill an empty index from the snapshot (not yet published: the caller adds the tail first)."""
    arrays, meta = snapshot.arrays, snapshot.meta
    index.offsets.extend(arrays["offsets"])
    index.lengths.extend(arrays["lengths"])
    index.ts.extend(arrays["ts"])
    for name, tag in index.tags.items():
        tag.codes.extend(arrays[f"tag.{name}"])
        tag.values[:] = meta["values"][name]
        tag.code_of.clear()
        tag.code_of.update((value, code) for code, value in enumerate(tag.values))
        if tag.stats is not None:
            tag.stats.clear()
            tag.stats.update((code, KeyStats(count, first, last)) for code, count, first, last in meta["stats"][name])
    if index.number is not None:
        index.number.extend(arrays["number"])
    if index.spec.unique:
        index.keys[:] = meta["keys"]
        index.unique.update(zip(index.keys, range(meta["count"]), strict=True))
    index.visible = meta["count"]
