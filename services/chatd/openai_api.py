"""The OpenAI Chat Completions wire format: the request chatd accepts, the completion and chunks it answers, the
error body the `openai` SDK understands. Pure: no I/O."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictStr

from services.chatd.numbers import check_json_numbers
from services.chatd.types import (
    ChatError,
    ChatRequest,
    Completion,
    Delta,
    Fallbacks,
    MaxTokens,
    Message,
    ModelName,
    Seed,
    Stop,
    Temperature,
    TopP,
)
from shared.errors import LakehouseError
from shared.web.wire import WireModel


class Strict(WireModel):
    model_config = ConfigDict(frozen=True)


class TextPart(Strict):
    type: Literal["text"]
    text: StrictStr


class OpenAIMessage(Strict):
    # "developer" is what newer OpenAI models call the system role.
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | Annotated[list[TextPart], Field(min_length=1)]


class StreamOptions(Strict):
    include_usage: StrictBool = False


class TextFormat(Strict):
    type: Literal["text"]


class JsonObjectFormat(Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    json_schema: Annotated[dict[str, Any], AfterValidator(check_json_numbers)] = Field(
        default_factory=dict, alias="schema"
    )
    description: StrictStr | None = None
    strict: StrictBool | None = None


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class CompletionsRequest(Strict):
    """POST /v1/chat/completions. What chatd cannot honour (tools, n > 1, logprobs, ...) is refused by name."""

    model: ModelName
    messages: Annotated[list[OpenAIMessage], Field(min_length=1)]
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: Annotated[StrictStr, Field(min_length=1)] | Stop | None = None
    seed: Seed | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    n: Literal[1] | None = None
    think: StrictBool = False
    fallbacks: Fallbacks | None = None

    def to_chat(self) -> ChatRequest:
        fmt: Any = None
        if isinstance(self.response_format, JsonObjectFormat):
            fmt = "json"
        elif isinstance(self.response_format, JsonSchemaFormat):
            fmt = self.response_format.json_schema.json_schema or "json"
        chat = ChatRequest.model_construct(
            model=self.model,
            messages=[Message.model_construct(role=_role(m.role), content=_text(m.content)) for m in self.messages],
            format=fmt,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=[self.stop] if isinstance(self.stop, str) else self.stop,
            seed=self.seed,
            think=self.think,
            stream=self.stream,
            fallbacks=self.fallbacks,
        )
        if isinstance(self.response_format, JsonSchemaFormat):
            chat._json_schema = self.response_format.json_schema.model_dump(by_alias=True, exclude_none=True)
        return chat

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def _role(role: str) -> Literal["system", "user", "assistant"]:
    return "system" if role == "developer" else role  # type: ignore[return-value]


def _text(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


# OpenAI's finish reasons; whatever else an upstream says (Ollama's "unload", none at all) reads as a normal stop.
FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def finish_reason(reason: str | None) -> str:
    return reason if reason in FINISH_REASONS else "stop"


def completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


def usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion_body(routed: str, completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.content}
    if completion.reasoning:
        message["reasoning_content"] = completion.reasoning
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": routed,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(completion.finish_reason), "logprobs": None}
        ],
        "usage": usage(completion.prompt_tokens, completion.completion_tokens),
    }


def error_payload(exc: LakehouseError) -> dict[str, Any]:
    """The stack's error shape plus OpenAI's `type` and `param`, so the SDK raises its usual exception."""
    param = exc.param if isinstance(exc, ChatError) else None
    kind = ERROR_TYPES.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")
    return {"error": {"code": exc.code, "message": exc.message, "type": kind, "param": param}}


class ChunkEncoder:
    """`chat.completion.chunk` events for one stream; the constant part of each event is rendered once."""

    def __init__(self, routed: str, *, include_usage: bool) -> None:
        head = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": routed}
        self._prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":[{"index":0,"delta":'
        self._head = head
        self._include_usage = include_usage

    def _event(self, delta: dict[str, str], finish: str | None = None) -> bytes:
        tail = b',"finish_reason":null}]}\n\n' if finish is None else b',"finish_reason":"%s"}]}\n\n' % finish.encode()
        return self._prefix + orjson.dumps(delta) + tail

    def first(self, delta: Delta | None) -> bytes:
        out: dict[str, str] = {"role": "assistant", "content": delta.content if delta else ""}
        if delta is not None and delta.reasoning:
            out["reasoning_content"] = delta.reasoning
        return self._event(out)

    def delta(self, delta: Delta) -> bytes:
        if delta.reasoning:
            out = (
                {"content": delta.content, "reasoning_content": delta.reasoning}
                if delta.content
                else {"reasoning_content": delta.reasoning}
            )
            return self._event(out)
        return self._event({"content": delta.content}) if delta.content else b""

    def end(self, reason: str | None, prompt: int | None, completion: int | None) -> bytes:
        out = self._event({}, finish_reason(reason))
        if self._include_usage:
            chunk = {**self._head, "choices": [], "usage": usage(prompt, completion)}
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out + b"data: [DONE]\n\n"

    @staticmethod
    def error(exc: LakehouseError) -> bytes:
        return b"data: " + orjson.dumps(error_payload(exc)) + b"\n\n"
