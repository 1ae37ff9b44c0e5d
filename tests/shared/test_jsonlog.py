from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from shared.errors import LakehouseError
from shared.jsonlog import log as jsonlog
from shared.jsonlog.index import LogSpec
from shared.jsonlog.log import JsonLog
from shared.jsonlog.replay import LogCorrupt, replay
from shared.jsonlog.snapshot import snapshot_path

SPEC = LogSpec(tags=("kind",), unique="id")


async def opened(path: Path | str, spec: LogSpec = SPEC) -> JsonLog:
    log = JsonLog(str(path), spec, name="test")
    await log.open()
    return log


async def all_records(log: JsonLog) -> list[dict[str, Any]]:
    rows, _ = log.index.select(after=0, limit=10**9)
    return [orjson.loads(data) for data in await log.read(rows)]


def record(i: int, kind: str = "k") -> dict[str, Any]:
    return {"id": f"r{i}", "kind": kind, "n": i}


@pytest.mark.parametrize("where", ["file", "memory"])
async def test_append_assigns_seq_and_ts_and_survives_reopen(tmp_path: Path, where: str) -> None:
    path = tmp_path / "log.jsonl" if where == "file" else ""
    log = await opened(path)
    stamps = [(await log.append([record(i)]))[0] for i in range(3)]
    stamps += await log.append([record(3), record(4)])
    assert [s.seq for s in stamps] == [1, 2, 3, 4, 5]
    assert [s.ts for s in stamps] == sorted(s.ts for s in stamps)
    assert all(s.ts.endswith("Z") and len(s.ts) == 27 for s in stamps)
    before = await all_records(log)
    assert [r["n"] for r in before] == [0, 1, 2, 3, 4]
    assert before[0] == {"seq": 1, "ts": stamps[0].ts, "id": "r0", "kind": "k", "n": 0}
    await log.close()
    if where == "file":
        again = await opened(path)
        assert await all_records(again) == before
        assert (await again.append([record(5)]))[0].seq == 6
        await again.close()


async def test_concurrent_appends_share_fsyncs_and_keep_order(tmp_path: Path) -> None:
    log = await opened(tmp_path / "log.jsonl")
    fsyncs = 0
    write = log._write_durable

    def counting(data: bytes) -> None:
        nonlocal fsyncs
        fsyncs += 1
        write(data)

    log._write_durable = counting  # type: ignore[method-assign]
    stamps = await asyncio.gather(*(log.append([record(i)]) for i in range(200)))
    assert sorted(s.seq for (s,) in stamps) == list(range(1, 201))
    assert fsyncs < 200  # appends that waited on a running fsync went out together
    records = await all_records(log)
    assert [r["seq"] for r in records] == list(range(1, 201))
    await log.close()


async def test_bad_batch_stores_nothing(tmp_path: Path) -> None:
    log = await opened(tmp_path / "log.jsonl", LogSpec(tags=("kind",), unique="id", max_record_bytes=1024))
    await log.append([record(0)])
    with pytest.raises(LakehouseError) as too_big:
        await log.append([record(1), {"id": "big", "kind": "k", "blob": "x" * 2000}])
    assert too_big.value.code == "invalid_request"
    assert "record 1" in too_big.value.message
    with pytest.raises(LakehouseError) as exists:
        await log.append([record(2), record(0)])
    assert exists.value.code == "already_exists"
    with pytest.raises(LakehouseError):
        await log.append([record(3), {"id": "huge", "kind": "k", "n": 2**70}])
    assert [r["id"] for r in await all_records(log)] == ["r0"]
    assert (await log.append([record(1)]))[0].seq == 2
    await log.close()
    assert len((tmp_path / "log.jsonl").read_bytes().splitlines()) == 2


async def test_torn_last_line_is_cut_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = await opened(path)
    for i in range(3):
        await log.append([record(i)])
    await log.close()
    good = path.read_bytes()
    with path.open("ab") as file:
        file.write(b'{"seq":4,"ts":"2026-01-0')
    with capture_logs() as logs:
        again = await opened(path)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["line"] == 4
    assert path.read_bytes() == good
    assert [r["n"] for r in await all_records(again)] == [0, 1, 2]
    assert (await again.append([record(3)]))[0].seq == 4
    await again.close()


async def test_torn_batch_is_cut_whole(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = await opened(path)
    await log.append([record(0)])
    await log.append([record(1), record(2), record(3)])
    await log.close()
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the batch line loses its end: none of its records may come back
    again = await opened(path)
    assert [r["n"] for r in await all_records(again)] == [0]
    assert again.index.row_of("r1") is None
    await again.close()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda line: b"garbage " + line, "not JSON"),
        (lambda line: line.replace(b'"seq":2', b'"seq":7'), "seq is 7, expected 2"),
        (lambda line: b"", "not JSON"),
    ],
)
async def test_corrupt_middle_line_stops_the_start_naming_it(tmp_path: Path, damage: Any, reason: str) -> None:
    path = tmp_path / "log.jsonl"
    log = await opened(path)
    for i in range(4):
        await log.append([record(i)])
    await log.close()
    assert snapshot_path(path).exists()  # the damage is found even though an index snapshot covers the line
    lines = path.read_bytes().split(b"\n")
    lines[1] = damage(lines[1])
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    with pytest.raises(LogCorrupt) as exc:
        await opened(path)
    assert f"{path}: line 2 is damaged" in str(exc.value)
    assert reason in str(exc.value)
    assert path.read_bytes() == before  # nothing was cut


async def test_paging_over_10000_records_has_no_gaps_or_repeats(tmp_path: Path) -> None:
    log = await opened(tmp_path / "log.jsonl")
    for start in range(0, 10_000, 1000):
        await log.append([record(i, kind="even" if i % 2 == 0 else "odd") for i in range(start, start + 1000)])
    seen: list[int] = []
    after, pages = 0, 0
    while True:
        rows, next_seq = log.index.select(after=after, limit=333)
        seen += [orjson.loads(data)["n"] for data in await log.read(rows)]
        pages += 1
        if next_seq is None:
            break
        after = next_seq
    assert seen == list(range(10_000))
    assert pages == 31
    odd: list[int] = []
    after = 0
    while True:
        rows, next_seq = log.index.select(after=after, limit=1000, where={"kind": "odd"})
        odd += [orjson.loads(data)["n"] for data in await log.read(rows)]
        if next_seq is None:
            break
        after = next_seq
    assert odd == list(range(1, 10_000, 2))
    await log.close()


async def test_since_is_inclusive_and_until_exclusive() -> None:
    log = await opened("")
    stamps = [(await log.append([record(i)]))[0] for i in range(5)]
    micros = [log.codec.parse(s.ts) for s in stamps]
    rows, _ = log.index.select(after=0, limit=100, since=micros[1], until=micros[3])
    ids = [orjson.loads(data)["n"] for data in await log.read(rows)]
    # Records written within one microsecond share a ts; the window is by ts, so compare with the stamps.
    assert ids == [i for i in range(5) if micros[1] <= micros[i] < micros[3]]
    assert 1 in ids
    assert 3 not in ids


async def test_a_clean_close_saves_the_index_and_the_next_start_parses_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = await opened(path, LogSpec(tags=("kind",), unique="id", counted=("kind",), number="n"))
    await log.append([record(0, "a")])
    await log.append([record(1, "b"), record(2, "a")])
    await log.close()
    spec = log.spec
    full = path.stat().st_size
    assert replay(path, spec).parsed_bytes == 0
    with path.open("ab") as file:  # a line appended after the snapshot, as a crash before the next close leaves
        file.write(b'{"seq":4,"ts":"2099-01-01T00:00:00.000000Z","id":"r3","kind":"a","n":3}\n')
    done = replay(path, spec)
    assert done.parsed_bytes == path.stat().st_size - full
    again = await opened(path, spec)
    assert [r["n"] for r in await all_records(again)] == [0, 1, 2, 3]
    assert again.index.row_of("r1") == 1
    assert {kind: s.count for kind, s in again.index.tag_stats("kind").items()} == {"a": 3, "b": 1}
    with pytest.raises(LakehouseError):
        await again.append([record(2)])
    await again.close()


async def test_the_index_is_saved_while_running_so_a_crash_costs_only_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonlog, "SNAPSHOT_AFTER_BYTES", 2000)
    path = tmp_path / "log.jsonl"
    log = await opened(path)
    for i in range(60):
        await log.append([record(i)])
    if log._snapshotting is not None:
        await log._snapshotting
    assert snapshot_path(path).exists()
    size = path.stat().st_size
    done = replay(path, SPEC)  # as the next start after a kill -9 would: the log never closed
    assert 0 < done.parsed_bytes < size
    assert done.index.count == 60
    assert done.index.row_of("r42") == 42
    await log.close()


async def test_a_damaged_snapshot_is_ignored_and_the_log_replayed(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = await opened(path)
    await log.append([record(0), record(1)])
    await log.close()
    index_file = snapshot_path(path)
    index_file.write_bytes(index_file.read_bytes()[:-100])
    with capture_logs() as logs:
        again = await opened(path)
    assert [r["n"] for r in await all_records(again)] == [0, 1]
    assert any("snapshot not used" in entry["event"] for entry in logs)
    await again.close()
