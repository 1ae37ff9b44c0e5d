"""The interface every storaged backend implements, and what they share: object metadata, preconditions, key locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.storaged.ranges import Span
from shared.errors import LakehouseError, StartupFailed
from shared.web.etags import etag_matches

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a backend holds of an object. The listing's wire entry (schemas.ObjectInfo) is its public part, derived
    from it field by field: listings carry no content type or user metadata, as S3's do not."""

    key: str
    size: int
    etag: str  # quoted, as the ETag header carries it
    last_modified: datetime
    content_type: str = DEFAULT_CONTENT_TYPE
    # User metadata (S3's x-amz-meta-*, names in lower case); listings leave it empty, as S3's do.
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Precondition:
    """A conditional write: `if_none_match` = create only (If-None-Match: *); `if_match` = the ETag to replace."""

    if_none_match: bool = False
    if_match: str | None = None

    @property
    def is_conditional(self) -> bool:
        return self.if_none_match or self.if_match is not None


@dataclass(frozen=True, slots=True)
class Piece:
    """`size` bytes of the object `key` from `offset`: one part of an object that `compose` assembles."""

    key: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class FileRegion:
    fd: int
    offset: int
    count: int


class ObjectHandle(Protocol):
    """An object opened for reading: its metadata is known, its bytes are read on demand."""

    info: StoredObject

    def stream(self, span: Span | None) -> AsyncGenerator[bytes, None]: ...

    def file_region(self, span: Span | None) -> FileRegion | None:
        """Where the bytes lie in a local file, for a server that can send a file without reading it (splice);
        None when they are not in one (an S3 object, a small object already read)."""
        ...

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """Where storaged's objects live. Keys reach a backend already checked by `keys.check_key`.

    Errors are LakehouseError: not_found, precondition_failed, key_conflict; a body iterator that raises (e.g.
    payload_too_large) propagates, and the backend leaves nothing of that write behind.
    """

    name: str

    async def start(self) -> None:
        """Check the backend can be used (create the root, check the bucket); raise BackendUnavailable if not."""
        ...

    async def close(self) -> None: ...

    async def put(
        self,
        key: str,
        body: AsyncIterator[bytes],
        *,
        content_type: str,
        precondition: Precondition,
        metadata: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> StoredObject:
        """Store `body` at `key`. `etag` (quoted) replaces the MD5 the local backend computes, for an object that
        S3's multipart upload assembled (its ETag is the MD5 of the parts' MD5s); the S3 backend keeps the one its
        server gives, since the server, not storaged, answers for it."""
        ...

    async def compose(
        self, key: str, pieces: Sequence[Piece], *, content_type: str, metadata: Mapping[str, str], etag: str | None
    ) -> StoredObject:
        """Store the `pieces`, one after another, as the object `key` (CompleteMultipartUpload), which appears
        whole or not at all, with `etag` as in `put`; the local backend copies inside the kernel."""
        ...

    async def open(self, key: str) -> ObjectHandle: ...

    async def delete(self, key: str) -> None: ...

    async def list(
        self, prefix: str, *, after: str | None, limit: int, exclude: Sequence[str] = ()
    ) -> list[StoredObject]:
        """Up to `limit` objects whose keys start with `prefix` and sort after `after`, sorted by key, none of them
        `excluded` by one of the prefixes in `exclude` (the reserved prefixes, for a public listing)."""
        ...


async def concatenated(backend: Backend, pieces: Sequence[Piece]) -> AsyncIterator[bytes]:
    """The bytes of the `pieces`, one after another (a compose that streams through `put`)."""
    for piece in pieces:
        handle = await backend.open(piece.key)
        try:
            if piece.offset + piece.size > handle.info.size:
                raise LakehouseError("not_found", f"{piece.key!r} is shorter than the part it should hold")
            if not piece.size:
                continue
            async with aclosing(handle.stream(Span(piece.offset, piece.offset + piece.size - 1))) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            await handle.aclose()


async def single(data: bytes) -> AsyncIterator[bytes]:
    """`data` as a one-chunk body, for a backend's streaming put."""
    yield data


async def read_whole(backend: Backend, key: str) -> bytes:
    """A small object's bytes (a record), read at once."""
    handle = await backend.open(key)
    try:
        async with aclosing(handle.stream(None)) as chunks:
            return b"".join([chunk async for chunk in chunks])
    finally:
        await handle.aclose()


class BackendUnavailable(StartupFailed):
    """The backend cannot serve (missing bucket, unreachable endpoint, unusable root): one line for the operator."""


class KeyLocks:
    """One asyncio lock per key, created on demand and dropped when unused: serialises writers of the same key."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def check_precondition(key: str, precondition: Precondition, current_etag: str | None) -> None:
    """412 unless the write's condition holds for the object's current ETag (None: the key does not exist)."""
    if precondition.if_none_match and current_etag is not None:
        raise LakehouseError("precondition_failed", f"If-None-Match: * failed: {key!r} already exists")
    if precondition.if_match is not None and not etag_matches(precondition.if_match, current_etag):
        found = "it does not exist" if current_etag is None else f"its ETag is {current_etag}"
        raise LakehouseError("precondition_failed", f"If-Match failed for {key!r}: {found}")


def excluded(key: str, exclude: Sequence[str]) -> bool:
    """True when `key` lies inside one of the prefixes (each ending in /) or is one of them without its slash."""
    return any(key.startswith(p) or key == p[:-1] for p in exclude)
