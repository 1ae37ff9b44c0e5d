"""queryd's engine alone: the read-only classifier, the file sandbox, deadlines, views and the JSON value forms."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.queryd.classify import read_only_statement
from services.queryd.engine import Engine, Query, StartupError, View, Watchdog, httpfs_extension_path
from services.queryd.formats import json_result
from services.queryd.jsonvalues import batch_columns, dumps
from shared.errors import LakehouseError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "objects" / "data" / "trips"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3], "city": ["a", "b", "a"]}), data / "part-0.parquet")
    return tmp_path / "objects"


@pytest.fixture
def engine(root: Path) -> Iterator[Engine]:
    engine = Engine(threads=2, memory_limit="512MB", data_root=root, s3=None)
    engine.set_views([View("trips", 1, ("data/trips/part-0.parquet",))])
    yield engine
    engine.close()


def run(engine: Engine, sql: str, timeout: float = 30) -> dict[str, object]:
    query = Query(engine, sql, None, timeout)
    try:
        query.start()
        return json_result(query, 10_000)
    finally:
        query.close()


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "with a as (select 1) select * from a",
        "values (1), (2)",
        "from trips",
        "explain select 1",
        "describe trips",
        "summarize trips",
        "show tables",
        "select 1;",
    ],
)
def test_reading_statements_pass(sql: str) -> None:
    read_only_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "create table t (a int)",
        "attach ':memory:' as x",
        "install httpfs",
        "load httpfs",
        "set threads = 1",
        "reset threads",
        "use memory",
        "copy (select 1) to '/tmp/x.csv'",
        "export database '/tmp/x'",
        "call pragma_version()",
        "pragma enable_profiling",
        "pragma threads = 1",
        "insert into trips values (1, 'x')",
        "drop view trips",
        "begin",
        "checkpoint",
        "select 1; select 2",
        "select 1; drop view trips",
        "explain analyze create table t as select 1",
        "explain create table t (a int)",
        "create secret (type s3)",
        "detach memory",
    ],
)
def test_anything_else_is_read_only(sql: str) -> None:
    with pytest.raises(LakehouseError) as caught:
        read_only_statement(sql)
    assert caught.value.code == "read_only"


def test_unparseable_sql_is_invalid_request() -> None:
    with pytest.raises(LakehouseError) as caught:
        read_only_statement("selec 1")
    assert caught.value.code == "invalid_request"
    assert "syntax error" in caught.value.message


def test_views_answer(engine: Engine) -> None:
    result = run(engine, "select city, count(*) n from trips group by city order by city")
    assert result["rows"] == [["a", 2], ["b", 1]]
    assert result["columns"] == [{"name": "city", "type": "VARCHAR"}, {"name": "n", "type": "BIGINT"}]


def test_files_the_lakehouse_owns_are_readable(engine: Engine, root: Path) -> None:
    assert run(engine, f"select count(*) from read_parquet('{root}/data/trips/part-0.parquet')")["rows"] == [[3]]


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select * from glob('/')",
        "select * from glob('/*')",
        "select * from read_parquet('/root/x.parquet')",
        "select * from read_blob('/etc/hostname')",
        "select * from read_csv('{root}/../../../../etc/passwd')",
        "select * from read_csv('https://example.com/x.csv')",
    ],
)
def test_files_outside_the_lakehouse_are_forbidden(engine: Engine, root: Path, sql: str) -> None:
    with pytest.raises(LakehouseError) as caught:
        run(engine, sql.format(root=root))
    assert caught.value.code == "forbidden"


def test_the_sandbox_cannot_be_undone_even_by_a_statement_that_slips_through(engine: Engine) -> None:
    cursor = engine.cursor()
    with pytest.raises(Exception, match="locked"):
        cursor.execute("set enable_external_access = true")
    cursor.close()


def test_unknown_table_lists_the_datasets(engine: Engine) -> None:
    with pytest.raises(LakehouseError) as caught:
        run(engine, "select * from nope")
    assert caught.value.code == "invalid_request"
    assert "datasets: trips" in caught.value.message


def test_a_query_past_its_deadline_is_interrupted(engine: Engine) -> None:
    with pytest.raises(LakehouseError) as caught:
        run(engine, "select count(*) from range(1000000000000)", timeout=0.3)
    assert caught.value.code == "query_timeout"
    assert run(engine, "select 42")["rows"] == [[42]]


@pytest.mark.parametrize("sql", ["create table t (a int)", "select 1; select 2", "attach ':memory:' as x"])
def test_a_query_itself_refuses_anything_but_one_reading_statement(engine: Engine, sql: str) -> None:
    query = Query(engine, sql, None, 30)
    try:
        with pytest.raises(LakehouseError) as caught:
            query.start()
    finally:
        query.close()
    assert caught.value.code == "read_only"


def test_every_cursor_caches_parquet_footers(engine: Engine) -> None:
    # Straight on a cursor: current_setting is refused to SQL from a client (it would show the server's paths).
    cursor = engine.cursor()
    try:
        assert cursor.execute("select current_setting('parquet_metadata_cache')").fetchall() == [(True,)]
    finally:
        cursor.close()


def test_queries_share_the_engine_s_one_deadline_thread(engine: Engine) -> None:
    before = threading.active_count()
    for _ in range(5):
        query = Query(engine, "select 42", None, 30)
        query.start()
        assert threading.active_count() == before  # no timer thread of its own
        query.close()


def test_the_watchdog_runs_due_actions_in_deadline_order_and_never_a_cancelled_one() -> None:
    watchdog = Watchdog()
    fired: list[str] = []
    done = threading.Event()

    def late() -> None:
        fired.append("late")
        done.set()

    try:
        watchdog.schedule(0.4, late)
        cancelled = watchdog.schedule(0.3, lambda: fired.append("cancelled"))
        watchdog.cancel(cancelled)
        watchdog.cancel(cancelled)  # twice is harmless
        watchdog.schedule(0.2, lambda: fired.append("early"))  # earlier than any before it: the thread looks again
        assert done.wait(10)
    finally:
        watchdog.close()
    assert fired == ["early", "late"]


def test_a_failing_action_does_not_stop_the_watchdog() -> None:
    watchdog = Watchdog()
    fired = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        watchdog.schedule(0.01, fail)
        watchdog.schedule(0.05, fired.set)
        assert fired.wait(10)
    finally:
        watchdog.close()


def test_the_watchdog_drops_cancelled_entries_but_keeps_live_ones() -> None:
    watchdog = Watchdog()
    fired = threading.Event()
    try:
        live = watchdog.schedule(0.3, fired.set)
        for _ in range(Watchdog.COMPACT_AT * 2):
            watchdog.cancel(watchdog.schedule(3600, lambda: None))
        assert len(watchdog._heap) <= Watchdog.COMPACT_AT + 1
        assert live in watchdog._heap
        assert fired.wait(10)
    finally:
        watchdog.close()


def test_json_value_forms() -> None:
    engine = Engine(threads=1, memory_limit="256MB", data_root=None, s3=None)
    try:
        result = run(
            engine,
            """select 12.30::decimal(10,2) dec2, 170141183460469231731687303715884105727::hugeint huge,
               'nan'::double nan, '-inf'::double ninf, 1.5::double d, date '2024-01-02' dt,
               timestamp '2024-01-02 03:04:05.123456' ts, timestamptz '2024-01-02 03:04:05+00' tz,
               timestamp_ns '2024-01-02 03:04:05.123456789' tns, time '10:11:12' t, interval 3 day iv,
               [1.0, 'nan'::double, null] l, {'x': 1} s, map {'k': 2} m, 'ab'::blob b, null::int n""",
        )
    finally:
        engine.close()
    row = orjson.loads(orjson.dumps(result["rows"], default=str))[0]
    assert row == [
        "12.30",
        "170141183460469231731687303715884105727",
        "NaN",
        "-Infinity",
        1.5,
        "2024-01-02",
        "2024-01-02T03:04:05.123456",
        "2024-01-02T03:04:05+00:00",
        "2024-01-02T03:04:05.123456789",
        "10:11:12",
        {"months": 0, "days": 3, "nanoseconds": 0},
        [1.0, "NaN", None],
        {"x": 1},
        [["k", 2]],
        "YWI=",
        None,
    ]


PLAIN_TYPES = """select 12.30::decimal(10,2) dec2, (-5.5)::decimal(38,10) wide, 7::decimal(18,0) whole,
    123456789012345678901234567890.12::decimal(38,2) huge_dec, 'nan'::double nan, '-inf'::float ninf,
    -0.0::double neg_zero, 1.1::float f32, null::double no_d, 18446744073709551615::ubigint umax,
    (-9223372036854775807 - 1)::bigint bmin, 'ü ☃'::varchar s, null::varchar no_s, true b, 1::tinyint ti,
    2::usmallint us, i::integer i from range(3) t(i)"""


def test_a_result_of_plain_types_takes_the_json_forms_its_arrow_batches_would(engine: Engine) -> None:
    query = Query(engine, PLAIN_TYPES, None, 30)
    try:
        query.start()
        result = json_result(query, 10_000)
        assert query.reader is None  # straight from DuckDB's Python values, no Arrow batch
    finally:
        query.close()
    cursor = engine.cursor()
    try:
        table = cursor.execute(PLAIN_TYPES).to_arrow_table()
    finally:
        cursor.close()
    expected = [row for batch in table.to_batches() for row in map(list, zip(*batch_columns(batch), strict=True))]
    assert dumps(result["rows"]) == dumps(expected)
    assert result["rows"][0][:5] == ["12.30", "-5.5000000000", 7, "123456789012345678901234567890.12", "NaN"]


@pytest.mark.parametrize(
    ("max_rows", "count", "truncated"), [(0, 0, True), (9, 9, True), (10, 10, False), (11, 10, False)]
)
def test_max_rows_on_the_direct_path(engine: Engine, max_rows: int, count: int, truncated: bool) -> None:
    query = Query(engine, "select i from range(10) t(i)", None, 30)
    try:
        query.start()
        result = json_result(query, max_rows)
    finally:
        query.close()
    assert result["rows"] == [[i] for i in range(count)]
    assert (result["row_count"], result["truncated"]) == (count, truncated)


def test_views_follow_set_views(engine: Engine, root: Path) -> None:
    pq.write_table(pa.table({"id": [9], "city": ["z"]}), root / "data" / "trips" / "part-1.parquet")
    engine.set_views([View("trips", 2, ("data/trips/part-0.parquet", "data/trips/part-1.parquet"))])
    assert run(engine, "select count(*) from trips")["rows"] == [[4]]
    engine.set_views([])
    with pytest.raises(LakehouseError):
        run(engine, "select * from trips")


def test_queries_run_concurrently_on_their_own_cursors(engine: Engine) -> None:
    results: list[object] = []

    def one() -> None:
        results.append(run(engine, "select count(*) from trips")["rows"])

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[[3]]] * 20


def test_out_of_memory_is_a_clear_error_and_the_engine_keeps_serving() -> None:
    engine = Engine(threads=1, memory_limit="64MB", data_root=None, s3=None)
    try:
        with pytest.raises(LakehouseError) as caught:
            run(engine, "select list(i) from range(30000000) t(i)")
        assert caught.value.code == "invalid_request"
        assert "more memory than memory_limit" in caught.value.message
        assert run(engine, "select 42")["rows"] == [[42]]
    finally:
        engine.close()


def test_a_missing_httpfs_package_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(StartupError, match=r"duckdb-extension-httpfs==1\.5\.5"):
        httpfs_extension_path()


def test_a_view_over_a_key_with_a_glob_character_is_refused(engine: Engine, root: Path) -> None:
    # An allowed path is matched as written and then expanded: `*` in one would open every file beside it.
    failed = engine.set_views(
        [View("trips", 1, ("data/trips/part-0.parquet",)), View("g", 1, ("data/trips/*.parquet",))]
    )
    assert "glob character" in failed["g"]
    assert sorted(engine.views) == ["trips"]
    with pytest.raises(LakehouseError) as caught:
        run(engine, f"select * from read_blob('{root}/data/trips/*.parquet')")
    assert caught.value.code == "forbidden"
