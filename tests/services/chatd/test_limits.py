"""Bad input never reaches a provider and never breaks chatd: the body cap, the content type, number ranges, and a
corpus of malformed bodies that must all get a JSON 4xx (no 500, no non-JSON answer) on both chat APIs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.responses import JSONResponse

from tests.services.chatd.harness import HI, KEY_VARS, chatd
from tests.support.fixtures import Upstream

PATHS = ["/v1/chat", "/v1/chat/completions"]
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


def raw(**fields: Any) -> bytes:
    return json.dumps({"model": "qwen3.5:latest", "messages": HI, **fields}).encode()


def with_raw_value(field: str, literal: str) -> bytes:
    """A body whose `field` is the JSON text `literal` as written (1e999, NaN, a 30-digit integer, ...)."""
    return raw()[:-1] + f', "{field}": {literal}}}'.encode()


@pytest.mark.parametrize("path", PATHS)
async def test_body_over_the_cap_is_413_while_reading(ollama_upstream: Upstream, path: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the cap must hold while the body streams in.
        yield raw()[:-1] + b', "pad": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    async with chatd(ollama_url=ollama_upstream.url, max_request_bytes=16 * 1024) as client:
        streamed = await client.post(path, content=chunks(), headers=JSON_HEADERS)
        declared = await client.post(path, content=b"{" + b" " * 20_000 + b"}", headers=JSON_HEADERS)
        fits = await client.post(path, content=raw(), headers=JSON_HEADERS)
    for response in (streamed, declared):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert "16384 bytes" in response.json()["error"]["message"]
    assert fits.status_code == 200
    assert len(ollama_upstream.fake.received) == 1


def test_default_cap_is_8_mib() -> None:
    from shared.config import load_config

    assert load_config().chatd.max_request_bytes == 8 * 1024 * 1024


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_non_json_content_type_is_415(ollama_upstream: Upstream, path: str, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(path, content=raw(), headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert ollama_upstream.fake.received == []


BAD_NUMBERS = [
    ("max_tokens", "0"),
    ("max_tokens", "-1"),
    ("max_tokens", "123456789012345678901234567890"),
    ("max_tokens", "2147483648"),
    ("max_tokens", "1e999"),
    ("max_tokens", "1.5"),
    ("max_tokens", "NaN"),
    ("temperature", "-0.1"),
    ("temperature", "2.5"),
    ("temperature", "1e999"),
    ("temperature", "-1e999"),
    ("temperature", "Infinity"),
    ("temperature", "-Infinity"),
    ("temperature", "NaN"),
    ("temperature", "123456789012345678901234567890"),
    ("top_p", "1.01"),
    ("top_p", "-0.5"),
    ("top_p", "NaN"),
    ("top_p", "1e999"),
    ("seed", "9223372036854775808"),
    ("seed", "-9223372036854775809"),
    ("seed", "1e999"),
    ("seed", "0.5"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("field", "literal"), BAD_NUMBERS)
async def test_numbers_out_of_range_are_400_naming_the_field(
    ollama_upstream: Upstream, path: str, field: str, literal: str
) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(path, content=with_raw_value(field, literal), headers=JSON_HEADERS)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}: ")
    if path.endswith("completions"):
        assert (error["param"], error["type"]) == (field, "invalid_request_error")
    assert ollama_upstream.fake.received == []


@pytest.mark.parametrize("path", PATHS)
async def test_numbers_at_the_edges_of_their_ranges_pass(ollama_upstream: Upstream, path: str) -> None:
    edges = {"max_tokens": 2147483647, "temperature": 2, "top_p": 0, "seed": -(2**63)}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(path, content=raw(**edges), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    options = ollama_upstream.fake.received[0].body["options"]
    assert options == {"num_predict": 2147483647, "temperature": 2, "top_p": 0, "seed": -(2**63)}


@pytest.mark.parametrize("path", PATHS)
async def test_numbers_inside_a_json_schema_format_are_checked(ollama_upstream: Upstream, path: str) -> None:
    schema = '{"type": "object", "properties": {"n": {"type": "integer", "maximum": 1e999}}}'
    body = with_raw_value("format", schema)
    if path.endswith("completions"):
        body = with_raw_value(
            "response_format", '{"type": "json_schema", "json_schema": {"name": "x", "schema": ' + schema + "}}"
        )
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(path, content=body, headers=JSON_HEADERS)
    assert response.status_code == 400
    assert "finite" in response.json()["error"]["message"]


def _corpus() -> list[bytes]:
    """≥ 130 malformed bodies: not JSON, wrong types, sizes, nesting, unicode, numbers."""
    good = {"model": "qwen3.5:latest", "messages": HI}
    bodies: list[bytes] = [
        b"",
        b"{",
        b"}",
        b"null",
        b"[]",
        b'"a string"',
        b"123",
        b"true",
        b"{}",
        b"\x00\x01\x02",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf" + raw(),
        b'{"model": "m", "messages": [],}',
        b"{'model': 'm'}",
        b'{"model": "m" /* comment */}',
        b'{"model": "m", "model": 3, "messages": []}',
        raw() + b"trailing",
        raw() + b"\n" + raw(),
        b'{"model": "\\ud800", "messages": []}',
        b'{"model": "\\udc00x", "messages": []}',
        b'{"model": "\\uZZZZ", "messages": []}',
        b'{"model": "\xc0\xaf", "messages": []}',
        b'{"model": "\xed\xa0\x80", "messages": []}',
        b'{"model": "m\x00", "messages": [{"role": "user", "content": "\x01"}]}',
        b'{"model": NaN, "messages": []}',
        b"[" * 10_000 + b"]" * 10_000,
        b"{" + b'"a":{' * 5_000 + b"}" * 5_001,
        raw(format=None)[:-1] + b', "format": ' + b'{"a":' * 3_000 + b"1" + b"}" * 3_000 + b"}",
        raw(extra=[[[[[[[[[[]]]]]]]]]]),
    ]
    wrong_types: list[Any] = [None, True, 0, -1, 1.5, "x", "", [], [1], {}, {"a": 1}]
    for field in (
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "stream",
        "think",
        "fallbacks",
        "format",
    ):
        for value in wrong_types:
            body = {**good, field: value}
            if field == "model" and isinstance(value, str) and value:
                continue  # a non-empty string is a model name
            if field in ("stream", "think") and isinstance(value, bool):
                continue
            if field in ("stop", "fallbacks") and value == []:
                continue
            if value is None and field not in ("model", "messages", "stream", "think"):
                continue  # an explicit null means "not given"
            if field in ("max_tokens", "seed") and value in (0, -1) and field == "seed":
                continue
            bodies.append(json.dumps(body).encode())
    message_variants: list[Any] = [
        "hi",
        [None],
        [1],
        ["hi"],
        [[]],
        [{}],
        [{"role": "user"}],
        [{"content": "hi"}],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user", "content": None}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": {"text": "hi"}}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": "hi", "tool_calls": []}],
        [{"role": ["user"], "content": "hi"}],
        [{"role": "user", "content": "hi"}] * 3 + [None],
    ]
    bodies += [json.dumps({**good, "messages": m}).encode() for m in message_variants]
    bodies += [
        json.dumps({**good, "model": "m" * 10_000}).encode(),
        json.dumps({**good, "stop": ["a"] * 100}).encode(),
        json.dumps({**good, "stop": [""]}).encode(),
        json.dumps({**good, "fallbacks": ["m"] * 100}).encode(),
        json.dumps({**good, "fallbacks": [""]}).encode(),
        json.dumps({**good, "n": 2}).encode(),
        json.dumps({**good, "tools": [{"type": "function"}]}).encode(),
        json.dumps({**good, "logprobs": True}).encode(),
        json.dumps({**good, "stream_options": {"include_usage": "yes"}}).encode(),
        json.dumps({**good, "response_format": {"type": "xml"}}).encode(),
        json.dumps({**good, "response_format": {"type": "json_schema"}}).encode(),
        json.dumps({**good, "response_format": "json"}).encode(),
        json.dumps({**good, "unknown": 1}).encode(),
        json.dumps({**good, "MODEL": "x"}).encode(),
        json.dumps({**good, "model": "\u202e\u0000😀"}).encode(),
    ]
    bodies += [with_raw_value(field, literal) for field, literal in BAD_NUMBERS]
    bodies += [with_raw_value("max_tokens", "1" * 5000), with_raw_value("temperature", "0." + "1" * 5000)]
    return bodies


CORPUS = _corpus()


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 130


@pytest.mark.parametrize("path", PATHS)
async def test_bad_input_corpus_gets_json_answers_and_never_a_500(ollama_upstream: Upstream, path: str) -> None:
    ollama_upstream.fake.record = False
    failures = []
    async with chatd(ollama_url=ollama_upstream.url) as client:
        for body in CORPUS:
            response = await client.post(path, content=body, headers=JSON_HEADERS)
            try:
                answer = response.json()
            except ValueError:
                failures.append((body[:80], response.status_code, "not JSON"))
                continue
            server_fault = response.status_code >= 500 and response.status_code != 502
            shapeless = response.status_code >= 400 and not isinstance(answer.get("error", {}).get("message"), str)
            if server_fault or shapeless:
                failures.append((body[:80], response.status_code, answer))
    assert failures == []


async def test_key_echoed_after_a_long_message_never_leaks(
    openai_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "or-SECRETkey-98765"  # 18 characters
    monkeypatch.setenv("OPENROUTER_API_KEY", key)
    # The key straddles the 300-character cut: masked first, nothing of it survives the cut.
    echoed = "x" * 250 + " key " + key.upper() + " is not valid; Bearer " + key
    openai_upstream.fake.script.append(JSONResponse({"error": {"message": echoed}}, status_code=401))
    async with chatd(openrouter_url=openai_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "openrouter/a/b", "messages": HI})
    message = response.json()["error"]["message"]
    assert response.status_code == 502
    assert "***" in message
    assert not any(key[:n].lower() in message.lower() for n in range(6, len(key) + 1))
    assert not any(key[-n:].lower() in message.lower() for n in range(6, len(key) + 1))


async def test_a_huge_valid_body_under_the_cap_is_answered(ollama_upstream: Upstream) -> None:
    content = "word " * 200_000  # 1 MB
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(
            "/v1/chat", json={"model": "qwen3.5:latest", "messages": [{"role": "user", "content": content}]}
        )
    assert response.status_code == 200
