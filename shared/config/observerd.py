"""[observerd]: the ops log and its size limits."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection


class ObserverdConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3219", description="address observerd listens on")
    persist_path: str = Field("", description='JSONL ops log path; "" = in-memory only')
    max_record_bytes: int = Field(1 << 20, ge=1024, description="largest op as stored, in bytes (bigger: 400)")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="largest request body (a batch), in bytes (bigger: 413)")
