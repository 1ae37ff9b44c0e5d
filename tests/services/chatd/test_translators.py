from __future__ import annotations

from typing import Any

import pytest

from services.chatd.framing import EventSplitter
from services.chatd.ollama import OllamaChat
from services.chatd.ollama_cloud import OllamaGenerate, flatten_messages
from services.chatd.openai_compat import OpenAIChat
from services.chatd.types import ChatRequest, Completion, Delta, Message


def request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


def test_ollama_chat_defaults_think_off() -> None:
    call = OllamaChat().encode(request(), "qwen3.5:latest")
    assert call.path == "/api/chat"
    assert call.payload == {
        "model": "qwen3.5:latest",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "think": False,
    }


def test_ollama_maps_think_format_and_options() -> None:
    call = OllamaChat().encode(request(think=True, format="json", max_tokens=10, temperature=0.2), "m")
    assert call.payload["think"] is True
    assert call.payload["format"] == "json"
    assert call.payload["options"] == {"num_predict": 10, "temperature": 0.2}


def test_ollama_decode_tokens_and_done_reason() -> None:
    body = {"message": {"content": "x"}, "done_reason": "length", "prompt_eval_count": 4, "eval_count": 1}
    assert OllamaChat().decode(body) == Completion("x", "length", 4, 1)
    assert OllamaChat().decode({"message": {"content": "x"}}) == Completion("x", None, None, None)
    with pytest.raises(ValueError, match="no text content"):
        OllamaChat().decode({"message": {}})


def test_generate_flattens_and_maps_options() -> None:
    req = request(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=5,
        format="json",
    )
    call = OllamaGenerate().encode(req, "deepseek-v3.2")
    assert call.path == "/api/generate"
    assert call.payload == {
        "model": "deepseek-v3.2",
        "prompt": "hi",
        "system": "be brief",
        "stream": False,
        "think": False,
        "format": "json",
        "options": {"num_predict": 5},
    }
    assert OllamaGenerate().decode({"response": "ok", "eval_count": 1}) == Completion("ok", None, None, 1)


def test_flatten_multi_turn_keeps_order_and_roles() -> None:
    messages = [
        Message(role="system", content="s1"),
        Message(role="user", content="u1"),
        Message(role="assistant", content="a1"),
        Message(role="system", content="s2"),
        Message(role="user", content="u2"),
    ]
    assert flatten_messages(messages) == ("s1\n\ns2", "User: u1\n\nAssistant: a1\n\nUser: u2")
    assert flatten_messages([Message(role="user", content="only")]) == ("", "only")


def test_openai_encode() -> None:
    call = OpenAIChat().encode(request(format="json", max_tokens=7, temperature=1), "anthropic/claude")
    assert call.path == "/chat/completions"
    assert call.payload == {
        "model": "anthropic/claude",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "temperature": 1,
        "response_format": {"type": "json_object"},
    }
    assert "response_format" not in OpenAIChat().encode(request(), "m").payload


def test_openai_usage_top_level_or_in_choice() -> None:
    top = {
        "choices": [{"message": {"content": "a"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    inside = {
        "choices": [
            {
                "message": {"content": "a"},
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
            }
        ]
    }
    assert OpenAIChat().decode(top) == Completion("a", "stop", 3, 1)
    assert OpenAIChat().decode(inside) == Completion("a", "stop", 5, 2)
    assert OpenAIChat().decode({"choices": [{"message": {"content": "a"}}]}) == Completion("a", None, None, None)


def test_openai_zero_choices() -> None:
    with pytest.raises(ValueError, match="zero choices"):
        OpenAIChat().decode({"choices": []})


def test_error_messages() -> None:
    assert OllamaChat().error_message({"error": "model 'x' not found"}) == "model 'x' not found"
    assert OpenAIChat().error_message({"error": {"message": "bad key"}}) == "bad key"
    assert OpenAIChat().error_message(["no"]) is None


def test_event_splitter_ndjson_across_reads() -> None:
    splitter = EventSplitter("ndjson")
    assert splitter.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert splitter.feed(b": 2}\n\n") == [b'{"b": 2}']
    assert splitter.feed(b'{"c": 3}') == []
    assert splitter.tail() == [b'{"c": 3}']


def test_event_splitter_sse_data_lines_comments_and_done() -> None:
    splitter = EventSplitter("sse")
    events = splitter.feed(b': keep-alive\n\nevent: message\ndata: {"x": 1}\n\ndata:{"y"')
    assert events == [b'{"x": 1}']
    assert splitter.feed(b": 2}\r\n\r\ndata: [DONE]\n\n") == [b'{"y": 2}']
    assert splitter.done


def test_ollama_chunks() -> None:
    assert OllamaChat().decode_chunk({"message": {"content": "hi", "thinking": "hm"}, "done": False}) == Delta(
        "hi", "hm"
    )
    final = {"message": {"content": ""}, "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}
    assert OllamaChat().decode_chunk(final) == Delta("", "", "stop", 3, 2, done=True)
    assert OllamaGenerate().decode_chunk({"response": "x", "done": False}) == Delta("x")


def test_openai_chunks_content_reasoning_finish_and_usage() -> None:
    chat = OpenAIChat()
    assert chat.decode_chunk({"choices": [{"delta": {"role": "assistant", "content": "a"}}]}) == Delta("a")
    assert chat.decode_chunk({"choices": [{"delta": {"reasoning_content": "r"}}]}) == Delta("", "r")
    assert chat.decode_chunk({"choices": [{"delta": {}, "finish_reason": "length"}]}) == Delta(finish_reason="length")
    usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 5}}
    assert chat.decode_chunk(usage) == Delta(prompt_tokens=4, completion_tokens=5)


def test_openai_stream_encode_asks_for_usage_and_schema_format() -> None:
    call = OpenAIChat().encode(request(format={"type": "object"}, top_p=0.5, stop=["x"], seed=1), "m", stream=True)
    assert call.payload["stream"] is True
    assert call.payload["stream_options"] == {"include_usage": True}
    assert call.payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}},
    }
    assert (call.payload["top_p"], call.payload["stop"], call.payload["seed"]) == (0.5, ["x"], 1)


def test_ollama_stream_encode_and_schema_format() -> None:
    call = OllamaChat().encode(request(format={"type": "object"}, stop=["x"]), "m", stream=True)
    assert (call.payload["stream"], call.payload["format"], call.payload["options"]) == (
        True,
        {"type": "object"},
        {"stop": ["x"]},
    )
