"""The `lakehouse` commands that talk to a running stack, run as an operator runs them, against `lakehouse up`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.net import free_port
from shared.registry import upstreams
from tests.support.live import LiveStack, clean_environment

TRIPS_CSV = b"city,miles,paid\nlisbon,3.5,true\nporto,12.25,false\nfaro,7.0,true\n"


def lakehouse(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shared.stack.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env or clean_environment(),
    )


def at(stack: LiveStack, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return lakehouse(*args, "--url", stack.url, stdin=stdin)


def assert_clean_failure(result: subprocess.CompletedProcess[bytes], message: str) -> None:
    assert result.returncode == 1
    err = result.stderr.decode()
    assert message in err
    assert "Traceback" not in err


def test_status_shows_every_service_ok(live: LiveStack) -> None:
    result = at(live, "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    for service in upstreams():
        assert any(line.split()[:2] == [service.name, "ok"] for line in out.splitlines()), out
    assert "stack: ok" in out
    assert "S3 API: off (set LH_S3_API__ACCESS_KEY_ID and LH_S3_API__SECRET_ACCESS_KEY" in out


def test_status_takes_the_url_from_the_environment(live: LiveStack) -> None:
    result = lakehouse("status", env={**clean_environment(), "LAKEHOUSE_URL": live.url})
    assert result.returncode == 0, result.stderr


def test_unreachable_gateway_is_one_line_and_exit_1() -> None:
    result = lakehouse("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert_clean_failure(result, "lakehouse status: cannot reach the gateway at http://127.0.0.1:")


def test_wrong_token_prints_the_apis_message(live_with_token: LiveStack) -> None:
    result = lakehouse("datasets", "--url", live_with_token.url, "--token", "not-the-token")
    assert_clean_failure(result, "missing or wrong Authorization: Bearer token (unauthorized, HTTP 401)")
    assert b"not-the-token" not in result.stderr


def test_the_right_token_is_accepted(live_with_token: LiveStack) -> None:
    result = lakehouse("status", "--url", live_with_token.url, "--token", live_with_token.token)
    assert result.returncode == 0, result.stderr


def test_put_then_get_an_object(live: LiveStack, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"hello lakehouse\n" * 1000)
    put = at(live, "put", "cli/notes.txt", str(source))
    assert put.returncode == 0, put.stderr
    assert put.stdout.decode().startswith("cli/notes.txt: 16000 bytes, etag ")
    to_stdout = at(live, "get", "cli/notes.txt")
    assert to_stdout.stdout == source.read_bytes()
    target = tmp_path / "copy.txt"
    assert at(live, "get", "cli/notes.txt", str(target)).returncode == 0
    assert target.read_bytes() == source.read_bytes()


def test_put_from_stdin(live: LiveStack) -> None:
    assert at(live, "put", "cli/from-stdin", stdin=b"piped").returncode == 0
    assert at(live, "get", "cli/from-stdin").stdout == b"piped"


def test_get_a_missing_object_fails_cleanly_and_writes_no_file(live: LiveStack, tmp_path: Path) -> None:
    target = tmp_path / "never.bin"
    result = at(live, "get", "cli/does-not-exist", str(target))
    assert_clean_failure(result, "(not_found, HTTP 404)")
    assert not target.exists()
    assert not (tmp_path / "never.bin.part").exists()


def test_ingest_then_datasets_then_sql(live: LiveStack, tmp_path: Path) -> None:
    source = tmp_path / "trips.csv"
    source.write_bytes(TRIPS_CSV)
    ingest = at(live, "ingest", str(source), "cli_trips", "--mode", "replace")
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.decode().startswith("cli_trips: version ")
    assert "3 rows" in ingest.stdout.decode()

    datasets = at(live, "datasets")
    assert any(line.split()[:1] == ["cli_trips"] for line in datasets.stdout.decode().splitlines())

    query = "select city, miles from cli_trips order by miles"
    csv_out = at(live, "sql", query, "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    rows = list(csv.reader(io.StringIO(csv_out.stdout.decode())))
    assert rows == [["city", "miles"], ["lisbon", "3.5"], ["faro", "7"], ["porto", "12.25"]]

    json_out = json.loads(at(live, "sql", query, "--format", "json").stdout)
    assert json_out["rows"] == [["lisbon", 3.5], ["faro", 7.0], ["porto", 12.25]]

    table = at(live, "sql", query, "--format", "table").stdout.decode().splitlines()
    assert table[0].split() == ["city", "miles"]
    assert table[2].split() == ["lisbon", "3.5"]
    assert table[-1] == "3 row(s)"


@pytest.mark.parametrize("name", ["events.json", "events.jsonl", "events.ndjson"])
def test_ingest_takes_the_format_from_the_file_name_as_ingestd_reads_it(
    live: LiveStack, tmp_path: Path, name: str
) -> None:
    source = tmp_path / name
    source.write_bytes(b'{"kind": "click", "n": 1}\n{"kind": "view", "n": 2}\n')
    dataset = "cli_" + name.replace(".", "_")
    ingest = at(live, "ingest", str(source), dataset, "--mode", "replace")
    assert ingest.returncode == 0, ingest.stderr
    assert "2 rows" in ingest.stdout.decode()
    out = json.loads(at(live, "sql", f"select kind, n from {dataset} order by n", "--format", "json").stdout)
    assert out["rows"] == [["click", 1], ["view", 2]]


def test_ingest_of_a_missing_file_fails_cleanly(live: LiveStack, tmp_path: Path) -> None:
    result = at(live, "ingest", str(tmp_path / "nope.csv"), "anything")
    assert_clean_failure(result, "cannot read")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from no_such_table", "(invalid_request, HTTP 400)"),
        ("create table t (x int)", "(read_only, HTTP 400)"),
    ],
)
def test_sql_errors_print_the_apis_message(live: LiveStack, query: str, message: str) -> None:
    assert_clean_failure(at(live, "sql", query, "--format", "csv"), message)


def test_chat_streams_the_answer(live: LiveStack) -> None:
    result = at(live, "chat", "qwen3.5:latest", "ping")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "echo: ping"


def test_chat_with_an_unregistered_provider_fails_cleanly(live: LiveStack) -> None:
    assert_clean_failure(at(live, "chat", "kimi/k2", "hi"), "(provider_not_registered, HTTP 404)")
