"""observerd's wire models: one op as posted, a batch of them, and the summary's rows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.web.wire import WireModel

MAX_BATCH = 1000


class Strict(WireModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class OpIn(Strict):
    service: str = Field(min_length=1, max_length=256)
    op: str = Field(min_length=1, max_length=256)
    status: Literal["ok", "error"]
    duration_ms: float | None = Field(None, ge=0)
    attrs: dict[str, Any] | None = None


class OpsBatch(Strict):
    ops: list[OpIn] = Field(min_length=1, max_length=MAX_BATCH)


class OpSummary(BaseModel):
    service: str
    op: str
    count: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
