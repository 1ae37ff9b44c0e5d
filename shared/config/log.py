"""[log]: the lowest level logged."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.config.base import Section


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
