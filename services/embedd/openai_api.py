"""The OpenAI embeddings surface (POST /v1/embeddings): its request, and the response shape the SDK parses."""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from services.embedd.embedder import Embedding
from services.embedd.schemas import check_texts
from shared.errors import LakehouseError


class OpenAIEmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: StrictStr = Field(min_length=1)
    input: StrictStr | list[Any]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(None, gt=0)
    # Accepted and ignored, as by OpenAI for abuse tracking: it changes nothing about the answer.
    user: StrictStr | None = None

    @field_validator("input")
    @classmethod
    def _texts_only(cls, value: str | list[Any]) -> str | list[Any]:
        items = [value] if isinstance(value, str) else value
        for index, item in enumerate(items):
            if isinstance(item, int | list):
                raise PydanticCustomError(
                    "invalid_input", "token arrays are not supported; send the text as a string or a list of strings"
                )
            if not isinstance(item, str):
                raise PydanticCustomError("invalid_input", f"input[{index}] is not a string")
        check_texts(items, "input")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else [str(item) for item in self.input]


def check_dimensions(request: OpenAIEmbeddingsRequest, embedding: Embedding) -> None:
    """`dimensions` can only restate the model's own: these models cannot shorten their vectors."""
    if request.dimensions is not None and request.dimensions != embedding.dimensions:
        raise LakehouseError(
            "invalid_request",
            f'dimensions {request.dimensions} is not supported by model "{request.model}", '
            f"which has {embedding.dimensions}; omit it or send {embedding.dimensions}",
        )


def response_body(request: OpenAIEmbeddingsRequest, embedding: Embedding) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for index, vector in enumerate(embedding.vectors):
        # float32 arrays go to orjson as they are: it writes the shortest digits that read back to the same float32.
        encoded: Any = (
            base64.b64encode(vector.astype("<f4").tobytes()).decode() if request.encoding_format == "base64" else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(embedding.tokens)
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
