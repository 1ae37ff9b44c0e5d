"""embedd's wire models: POST /v1/embed and its answer (shared by the app and the client)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from pydantic_core import PydanticCustomError

MAX_TEXTS = 512
MAX_BODY_BYTES = 4 << 20


def check_texts(texts: list[str], field: str) -> list[str]:
    """The stack's rules for texts to embed: 1..512 of them, none empty."""
    if not texts:
        raise PydanticCustomError("invalid_input", f"{field} is empty; send at least one text")
    if len(texts) > MAX_TEXTS:
        raise PydanticCustomError("invalid_input", f"{field} has {len(texts)} texts; at most {MAX_TEXTS} per request")
    for index, text in enumerate(texts):
        if not text:
            raise PydanticCustomError(
                "invalid_input", f"{field}[{index}] is an empty string; every text must have at least one character"
            )
    return texts


class EmbedRequest(BaseModel):
    """POST /v1/embed: `texts` (a list) or `text` (one), and optionally `model` (else [embedd] default_model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: list[StrictStr] | None = None
    text: StrictStr | None = None
    model: StrictStr | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> EmbedRequest:
        if (self.texts is None) == (self.text is None):
            raise PydanticCustomError(
                "invalid_input", 'send either "texts" (a list of strings) or "text" (one string), not both or neither'
            )
        if self.texts is not None:
            check_texts(self.texts, "texts")
        elif not self.text:
            raise PydanticCustomError("invalid_input", "text is an empty string; send at least one character")
        return self

    def all_texts(self) -> list[str]:
        return list(self.texts) if self.texts is not None else [self.text or ""]


class EmbedResponse(BaseModel):
    model: str
    dimensions: int
    embeddings: list[list[float]]
    cached: int
