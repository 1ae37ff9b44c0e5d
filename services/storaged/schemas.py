"""storaged's wire models: what PUT and the listing answer, and an object's metadata as GET/HEAD give it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_LIST_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 1000


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutResult(WireModel):
    """201 body of `PUT /v1/storage/objects/{key}`."""

    key: str
    size: int
    etag: str = Field(description='the quoted ETag, e.g. "\\"9a0364b9e99bb480dd25e1f0284c8555\\""')


class ObjectInfo(WireModel):
    """One entry of the listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class ObjectList(WireModel):
    """`GET /v1/storage/objects?prefix=&limit=&after=`: sorted by key; `next` is the `after` of the next page."""

    objects: list[ObjectInfo]
    next: str | None


class ObjectMeta(WireModel):
    """An object's metadata as GET and HEAD give it in headers (size is the whole object's, ranges aside)."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str
