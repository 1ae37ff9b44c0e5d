"""[pathwayd]: the pathway log and its size limits."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection


class PathwaydConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3217", description="address pathwayd listens on")
    persist_path: str = Field("", description='JSONL log path; "" = in-memory only')
    max_record_bytes: int = Field(1 << 20, ge=1024, description="largest trace as stored, in bytes (bigger: 400)")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="largest request body, in bytes (bigger: 413)")
