"""The spend ledger survives kill -9: every request chatd answered is in the `spend` dataset once chatd is back,
exactly once — none lost from the spool, none shipped twice."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.net import free_port
from tests.support.fakes import ollama
from tests.support.fakes.recorder import FakeUpstream
from tests.support.lake import Lake, running_lake
from tests.support.processes import start_serving, stop_serving
from tests.support.servers import serve_in_thread

ROOT = "ledger-test-root-token-0123456789"
REQUESTS = 40
UNREGISTERED_PROVIDERS = ("ollama_cloud", "openrouter", "opencode", "kimi")


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with running_lake(tmp_path / "lake", token=ROOT) as running:
        yield running


def start_chatd(lake: Lake, port: int, ledger: Path, ollama_url: str, **more: str) -> subprocess.Popen[bytes]:
    environ = {
        **more,
        "LH_AUTH__TOKEN": ROOT,
        "LH_CHATD__OLLAMA_URL": ollama_url,
        "LH_CHATD__LEDGER_DIR": str(ledger),
        "LH_CHATD__LEDGER_SHIP_SECS": "0.3",
        "LH_CHATD__STORAGED_URL": lake.config.gateway.upstream_url("storaged"),
        "LH_CHATD__CATALOGD_URL": lake.config.gateway.upstream_url("catalogd"),
        **{f"LH_CHATD__{name.upper()}_KEY_FILE": "/nonexistent/x.env" for name in UNREGISTERED_PROVIDERS},
    }
    return start_serving("chatd", port, environ)


def spend_rows(lake: Lake) -> int:
    try:
        rows = lake.sql("select count(*) as n, count(distinct request_id) as ids from spend")
    except AssertionError:  # not shipped yet: no dataset
        return 0
    assert rows[0]["n"] == rows[0]["ids"], "a record was shipped twice"
    n: int = rows[0]["n"]
    return n


def test_every_answered_request_is_in_the_ledger_after_kill_9(lake: Lake, tmp_path: Path) -> None:
    port, ledger = free_port(), tmp_path / "ledger"
    body = {"model": "ollama/qwen3.5:latest", "messages": [{"role": "user", "content": "count me"}]}
    with serve_in_thread(ollama.create_app(FakeUpstream())) as ollama_url:
        chatd = start_chatd(lake, port, ledger, ollama_url)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {ROOT}"}) as http:

                def one(index: int) -> int:
                    stream = index % 2 == 1
                    return http.post("/v1/chat/completions", json={**body, "stream": stream}).status_code

                with ThreadPoolExecutor(8) as pool:
                    statuses = list(pool.map(one, range(REQUESTS)))
        finally:
            stop_serving(chatd, signal.SIGKILL)  # at once after the last answer: some records are not shipped yet
        assert statuses == [200] * REQUESTS
        chatd = start_chatd(lake, port, ledger, ollama_url)
        try:
            deadline = time.monotonic() + 30
            while spend_rows(lake) < REQUESTS and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # a few more ship rounds: nothing may arrive twice
            assert spend_rows(lake) == REQUESTS
            streamed = lake.sql("select count(*) as n from spend where stream")
            assert streamed[0]["n"] == REQUESTS // 2
        finally:
            stop_serving(chatd)


def test_a_keys_budget_and_tokens_per_minute_hold_across_a_restart(lake: Lake, tmp_path: Path) -> None:
    port, ledger = free_port(), tmp_path / "ledger"
    model = "ollama/qwen3.5:latest"
    body = {"model": model, "messages": [{"role": "user", "content": "count me"}]}
    prices = json.dumps({model: {"input": 1e4, "output": 1e4}})  # a cent a token
    url = f"http://127.0.0.1:{port}"

    def as_key(http: httpx.Client, **grant: Any) -> httpx.Response:
        # The grant the gateway sends with a key's request (shared/keys/grant.py); chatd meters by its id. A request
        # on a tpm key reserves its max_tokens: what one costs.
        header = json.dumps({"name": grant["id"], **grant})
        reserve = {"max_tokens": grant["tpm"] // 2} if "tpm" in grant else {}
        return http.post("/v1/chat/completions", json={**body, **reserve}, headers={"x-lakehouse-key": header})

    with serve_in_thread(ollama.create_app(FakeUpstream())) as ollama_url:
        chatd = start_chatd(lake, port, ledger, ollama_url, LH_CHATD__PRICES=prices)
        try:
            with httpx.Client(base_url=url, headers={"authorization": f"Bearer {ROOT}"}) as http:
                tokens = as_key(http, id="LHPROBEPROBEPROBEPRO").json()["usage"]["total_tokens"]
                budget = {"id": "LHBUDGETBUDGETBUDGET", "budget_usd": 2.5 * tokens / 100, "budget_period": "day"}
                metered = {"id": "LHMETEREDMETEREDMETE", "tpm": 2 * tokens}
                assert [as_key(http, **budget).status_code for _ in range(3)] == [200] * 3  # spent 3 of 2.5
                assert [as_key(http, **metered).status_code for _ in range(2)] == [200, 200]  # a minute's tokens
                before = [as_key(http, **budget), as_key(http, **metered)]
        finally:
            stop_serving(chatd)
        chatd = start_chatd(lake, port, ledger, ollama_url, LH_CHATD__PRICES=prices)
        try:
            with httpx.Client(base_url=url, headers={"authorization": f"Bearer {ROOT}"}) as http:
                after = [as_key(http, **budget), as_key(http, **metered)]
        finally:
            stop_serving(chatd)
    for answers in (before, after):
        assert [a.status_code for a in answers] == [429, 429], [a.text for a in answers]
        assert answers[0].json()["error"]["code"] == "budget_exceeded"
        assert "tokens per minute" in answers[1].json()["error"]["message"]


def test_the_ledger_merges_its_small_files_and_keeps_every_record(tmp_path: Path) -> None:
    body = {"model": "ollama/qwen3.5:latest", "messages": [{"role": "user", "content": "count me"}]}
    with (
        serve_in_thread(ollama.create_app(FakeUpstream())) as ollama_url,
        running_lake(tmp_path, token=ROOT, ollama_url=ollama_url, chatd={"ledger_compact_files": 2}) as lake,
        lake.http() as http,
    ):
        rounds = 5
        for shipped in range(1, rounds + 1):  # one request per ship: one small file each
            assert http.post("/v1/chat/completions", json=body).status_code == 200
            deadline = time.monotonic() + 30
            while spend_rows(lake) < shipped:
                assert time.monotonic() < deadline, f"round {shipped} never shipped"
                time.sleep(0.1)
        files = http.get("/v1/catalog/datasets/spend").json()["files"]
        assert len(files) <= 2  # merged whenever more than 2 piled up
        assert any("compacted" in f["key"] for f in files)
        assert spend_rows(lake) == rounds
