"""A key's chat limits and the spend ledger, on a whole stack with chatd: models, tokens per minute and budgets
refused the way the OpenAI SDK understands, every request charged what its usage says, and the ledger a dataset
queried with SQL through the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.fakes import ollama
from tests.support.fakes.recorder import FakeUpstream
from tests.support.lake import Lake, running_lake
from tests.support.servers import serve_in_thread

ROOT = "spend-test-root-token-0123456789"
README = Path(__file__).parents[2] / "README.md"
MODEL = "ollama/qwen3.5:latest"
HI: Any = [{"role": "user", "content": "hello there"}]
USD_PER_TOKEN = 0.01


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with serve_in_thread(ollama.create_app(FakeUpstream())) as ollama_url:
        price = {"input": USD_PER_TOKEN * 1e6, "output": USD_PER_TOKEN * 1e6}
        with running_lake(
            tmp_path_factory.mktemp("spend"), token=ROOT, ollama_url=ollama_url, chatd={"prices": {MODEL: price}}
        ) as running:
            yield running


def make_key(lake: Lake, **body: Any) -> dict[str, Any]:
    with lake.http() as http:
        made = http.post("/v1/keys", json={"scopes": ["chat"], **body})
    assert made.status_code == 201, made.text
    key: dict[str, Any] = made.json()
    return key


def sdk(lake: Lake, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{lake.url}/v1", api_key=secret, max_retries=0)


def cost_of_one(lake: Lake) -> float:
    """What one request with HI costs at USD_PER_TOKEN, from the usage a root-token request reports."""
    with lake.http() as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    assert answer.status_code == 200, answer.text
    tokens: int = answer.json()["usage"]["total_tokens"]
    return tokens * USD_PER_TOKEN


def usage(lake: Lake, key_id: str) -> dict[str, Any]:
    with lake.http() as http:
        answer = http.get(f"/v1/keys/{key_id}/usage")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_key_past_its_budget_gets_budget_exceeded_as_a_rate_limit_error(lake: Lake) -> None:
    cost = cost_of_one(lake)
    budget = 2.5 * cost
    key = make_key(lake, name="budgeted", budget_usd=budget, budget_period="day")
    client = sdk(lake, key["secret"])
    for _ in range(3):  # the third is admitted under the budget, and passes it
        assert client.chat.completions.create(model=MODEL, messages=HI).usage is not None
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert refused.value.code == "budget_exceeded"
    assert int(refused.value.response.headers["retry-after"]) <= 86_400  # until the next UTC day
    spent = usage(lake, key["id"])
    assert spent["chat"]["spend_usd"] == pytest.approx(3 * cost)
    assert spent["chat"]["budget_usd"] == budget
    assert spent["requests"]["in_period"] == 4


def test_tokens_per_minute_admit_on_max_tokens_and_charge_what_was_used(lake: Lake) -> None:
    tokens = round(cost_of_one(lake) / USD_PER_TOKEN)
    reserve = 2 * tokens
    key = make_key(lake, name="metered", tpm=10 * tokens)
    client = sdk(lake, key["secret"])
    admitted = 0
    for _ in range(15):
        try:
            client.chat.completions.create(model=MODEL, messages=HI, max_tokens=reserve)
        except openai.RateLimitError as exc:
            refused = exc
            break
        admitted += 1
    # Each reserves 2x what it uses and is charged what it used: admitted while 2x are left, i.e. 9 of the 10.
    assert 9 <= admitted <= 10
    assert "tokens per minute" in str(refused)
    assert int(refused.response.headers["retry-after"]) >= 1


def test_a_key_limited_to_models_may_use_those_and_no_other(lake: Lake) -> None:
    key = make_key(lake, name="tiered", models=["local_fast"])
    client = sdk(lake, key["secret"])
    assert client.chat.completions.create(model="local_fast", messages=HI).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert "may not use model" in str(refused.value)


async def test_twenty_concurrent_streams_are_charged_exactly_what_their_usage_says(lake: Lake) -> None:
    key = make_key(lake, name="streamer", tpm=100_000, budget_usd=100.0)
    client = openai.AsyncOpenAI(base_url=f"{lake.url}/v1", api_key=key["secret"], max_retries=0)

    async def one() -> int:
        total = 0
        stream = await client.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if chunk.usage is not None:
                total = chunk.usage.total_tokens
        return total

    totals = await asyncio.gather(*(one() for _ in range(20)))
    await client.close()
    spent = await asyncio.to_thread(usage, lake, key["id"])
    assert spent["chat"]["spend_usd"] == pytest.approx(sum(totals) * USD_PER_TOKEN)
    assert spent["chat"]["tokens_in_period"] == sum(totals)
    rows = await asyncio.to_thread(
        eventually_rows, lake, f"select count(*) as n, sum(cost_usd) as usd from spend where key_id = '{key['id']}'", 20
    )
    assert rows[0]["usd"] == pytest.approx(sum(totals) * USD_PER_TOKEN)


def test_the_ledger_is_the_spend_dataset_answering_the_usual_questions(lake: Lake) -> None:
    key = make_key(lake, name="analyst")
    client = sdk(lake, key["secret"])
    for _ in range(3):
        client.chat.completions.create(model=MODEL, messages=HI)
    with lake.http() as http:
        assert http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI}).status_code == 200
    rows = eventually_rows(
        lake,
        "select key_name, count(*) as n, sum(cost_usd) as usd, bool_or(stream) as streamed from spend "
        f"where key_id = '{key['id']}' group by 1",
        3,
    )
    assert rows == [{"key_name": "analyst", "n": 3, "usd": pytest.approx(3 * cost_of_one(lake)), "streamed": False}]
    assert eventually_rows(lake, "select count(*) as n from spend where key_name = 'root'", 1)
    for query in readme_queries():  # the README's "usual questions" answer on this ledger
        assert lake.sql(query), query
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {ROOT}"}) as http:
        table = http.get("/v1/iceberg/v1/namespaces/lakehouse/tables/spend")
    assert table.status_code == 200  # lakehouse.spend in the Iceberg catalog


def readme_queries() -> list[str]:
    """The statements of the SQL block in the README's "Keys and spend" section."""
    section = README.read_text().split("## Keys and spend", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if not line.startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def eventually_rows(lake: Lake, query: str, rows_counted: int, within_secs: float = 30.0) -> list[dict[str, Any]]:
    """The rows of `query` once their `n` columns add up to `rows_counted` (the ledger ships every 0.2 s here)."""
    deadline = time.monotonic() + within_secs
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = lake.sql(query)
        except AssertionError:  # no spend dataset yet
            rows = []
        if sum(row["n"] or 0 for row in rows) >= rows_counted:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{query!r} did not count {rows_counted} rows within {within_secs}s: {rows}")
