"""pathwayd's wire models: a trace of multi-step work as posted, and what a write answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Ids appear in URLs (/v1/pathway/traces/{id}), so they keep to characters that need no escaping.
ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Step(Strict):
    name: str = Field(min_length=1)
    input: Any = None
    output: Any = None
    status: str | None = None
    duration_ms: float | None = Field(None, ge=0)


class TraceIn(Strict):
    kind: str = Field(min_length=1, max_length=256)
    steps: list[Step]
    metadata: dict[str, Any] | None = None
    id: str | None = Field(None, pattern=ID_PATTERN)


class TraceWritten(BaseModel):
    id: str
    seq: int
    ts: str
