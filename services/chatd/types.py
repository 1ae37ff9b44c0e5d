"""chatd's contract: the request a client sends, the completion a provider returns, and the errors between."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictStr

from services.chatd.numbers import check_json_numbers
from shared.errors import ErrorCode, LakehouseError

# The documented ranges (README "chatd" → limits). Out of range, non-finite or over 64 bits → 400 naming the field.
MAX_TOKENS_LIMIT = 2**31 - 1  # Ollama's num_predict is a 32-bit int
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STOP_SEQUENCES = 4
MAX_FALLBACKS = 8

MaxTokens = Annotated[int, Field(strict=True, ge=1, le=MAX_TOKENS_LIMIT)]
Temperature = Annotated[float, Field(strict=True, ge=0, le=2, allow_inf_nan=False)]
TopP = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Seed = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
Stop = Annotated[list[Annotated[StrictStr, Field(min_length=1)]], Field(max_length=MAX_STOP_SEQUENCES)]
ModelName = Annotated[StrictStr, Field(min_length=1, max_length=512)]
Fallbacks = Annotated[list[ModelName], Field(max_length=MAX_FALLBACKS)]
# "json", or a JSON Schema object the answer must follow (Ollama's `format`, OpenAI's json_schema).
Format = Literal["json"] | Annotated[dict[str, Any], AfterValidator(check_json_numbers)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: StrictStr


class ChatRequest(BaseModel):
    """POST /v1/chat. Unknown fields are refused rather than ignored, so a client never loses an option silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelName
    messages: list[Message] = Field(min_length=1)
    format: Format | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: Stop | None = None
    seed: Seed | None = None
    think: StrictBool = False
    stream: StrictBool = False
    fallbacks: Fallbacks | None = None
    # OpenAI's whole json_schema object (name, strict, ...) when the request came that way; OpenAI-compatible
    # providers get it as sent, the others its schema (which is `format`).
    _json_schema: dict[str, Any] | None = PrivateAttr(None)

    @property
    def json_schema(self) -> dict[str, Any] | None:
        return self._json_schema


@dataclass(frozen=True, slots=True)
class Completion:
    """What a provider's response decodes to, before chatd adds provider, model and latency."""

    content: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning: str = ""


@dataclass(slots=True)
class Delta:
    """One event of an upstream stream: text and thinking that arrived, and on the last one the totals.

    Not frozen: one is made per streamed token, and a frozen dataclass pays for object.__setattr__ on every field.
    """

    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One HTTP request to a provider: path under its base URL and the JSON body."""

    path: str
    payload: dict[str, Any]


Framing = Literal["ndjson", "sse"]


class Translator(Protocol):
    """A provider family's pure half: no network, testable alone."""

    framing: Framing  # how its streams are cut into events

    def encode(self, request: ChatRequest, model: str, *, stream: bool = False) -> UpstreamCall: ...

    def decode(self, body: Any) -> Completion: ...

    def decode_chunk(self, event: Any) -> Delta | None:
        """One parsed stream event → a Delta (None for events that carry nothing); ValueError if malformed."""
        ...

    def error_message(self, body: Any) -> str | None: ...


class ChatError(LakehouseError):
    """A chatd error; `param` names the request field at fault (OpenAI's `param`), if one is."""

    def __init__(
        self, code: ErrorCode, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message, headers=headers)
        self.param = param


class ProviderError(ChatError):
    """An upstream failure, already mapped to the stack's error codes; `fallback` says whether the next candidate of
    a fallback chain may be tried (429, 5xx, unreachable, timeout, unregistered — never the caller's own fault)."""

    def __init__(
        self, code: ErrorCode, message: str, *, fallback: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message, headers=headers)
        self.fallback = fallback


def provider_not_registered(provider: str, model: str, how: str) -> ProviderError:
    return ProviderError(
        "provider_not_registered",
        f'model "{model}" routes to provider "{provider}", which is not registered ({how})',
        fallback=True,
    )
