"""chatd's contract: the request a client sends, the completion a provider returns, and the errors between."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from shared.errors import LakehouseError


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: StrictStr


class ChatRequest(BaseModel):
    """POST /v1/chat. Unknown fields are refused rather than ignored, so a client never loses an option silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    format: Literal["json"] | None = None
    max_tokens: StrictInt | None = Field(None, gt=0)
    temperature: StrictFloat | StrictInt | None = Field(None, ge=0)
    think: StrictBool = False


@dataclass(frozen=True, slots=True)
class Completion:
    """What a provider's response decodes to, before chatd adds provider, model and latency."""

    content: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One HTTP request to a provider: path under its base URL and the JSON body."""

    path: str
    payload: dict[str, Any]


class Translator(Protocol):
    """A provider family's pure half: no network, testable alone.

    Streaming (a later `stream: true`) adds a chunk decoder beside `decode`; `encode` and `decode` stay as they are.
    """

    def encode(self, request: ChatRequest, model: str) -> UpstreamCall: ...

    def decode(self, body: Any) -> Completion: ...

    def error_message(self, body: Any) -> str | None: ...


class ProviderError(LakehouseError):
    """An upstream failure, already mapped to the stack's error codes."""


def provider_not_registered(provider: str, model: str, how: str) -> LakehouseError:
    return LakehouseError(
        "provider_not_registered",
        f'model "{model}" routes to provider "{provider}", which is not registered ({how})',
    )
