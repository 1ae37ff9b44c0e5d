"""matrixd's wire models: POST /v1/matrix/search and its answer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from services.vectord.schemas import MAX_K, Component

MAX_CORPORA = 32
MAX_BODY_BYTES = 1 << 20


class SearchRequest(BaseModel):
    """`query` (text, embedded through embedd with `model`) or `vector`, searched in every corpus (a vectord index)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: StrictStr | None = Field(None, min_length=1)
    vector: list[Component] | None = Field(None, min_length=1)
    corpora: list[Annotated[StrictStr, Field(min_length=1)]] = Field(min_length=1, max_length=MAX_CORPORA)
    k: int = Field(10, ge=1, le=MAX_K, strict=True)
    model: StrictStr | None = Field(None, min_length=1)
    filter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SearchRequest:
        if (self.query is None) == (self.vector is None):
            raise PydanticCustomError(
                "invalid_input", 'send either "query" (text) or "vector" (numbers), not both or neither'
            )
        if self.vector is not None and self.model is not None:
            raise PydanticCustomError("invalid_input", '"model" embeds "query"; it means nothing with "vector"')
        if len(set(self.corpora)) != len(self.corpora):
            raise PydanticCustomError("invalid_input", "corpora lists a corpus more than once")
        return self


class SearchMatch(BaseModel):
    corpus: str
    id: str
    score: float
    metadata: dict[str, Any]


class SearchResult(BaseModel):
    matches: list[SearchMatch]
    errors: dict[str, str]
