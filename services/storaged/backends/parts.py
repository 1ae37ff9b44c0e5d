"""Where a multipart upload's parts are kept until CompleteMultipartUpload assembles them: the part store.

An upload lives under `_s3/uploads/<id>/`: its record `upload.json` (written by the S3 API) beside its parts. How the
parts are kept is the backend's business, so each backend has a part store: `ObjectParts` keeps every part as an
object of its own (`part-00001`, …) and composes them on completion — what any backend can do; the local backend's
`LocalParts` (local_parts.py) writes the parts in place into the object-to-be, so completing an upload copies
nothing. Both keep everything under the upload's prefix, so deleting the upload is deleting that prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from services.storaged.backends.base import Backend, Piece, Precondition, StoredObject
from services.storaged.schemas import S3_PREFIX

UPLOADS = S3_PREFIX + "uploads/"
MAX_PART_NUMBER = 10_000
PART_NAME = "part-"


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS}{upload_id}/"


def part_key(upload_id: str, number: int) -> str:
    return f"{upload_prefix(upload_id)}{PART_NAME}{number:05d}"


class PartStore(Protocol):
    async def put(self, upload_id: str, number: int, body: AsyncIterator[bytes], size: int | None) -> StoredObject:
        """Store part `number` of the upload (replacing an earlier one); `size` is the length the request declared,
        None when it did not. Once this answers, the part is durable."""
        ...

    async def stored(self, upload_id: str) -> dict[int, StoredObject]:
        """The upload's parts by number."""
        ...

    async def assemble(
        self,
        upload_id: str,
        key: str,
        chosen: Sequence[tuple[int, StoredObject]],
        *,
        content_type: str,
        metadata: Mapping[str, str],
        etag: str | None,
    ) -> StoredObject:
        """Store the `chosen` parts (numbered, in order) as the object `key`, which appears whole or not at all."""
        ...


class ObjectParts:
    """Each part an object under the upload's prefix; completion composes them (the s3 backend's server copies)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def put(self, upload_id: str, number: int, body: AsyncIterator[bytes], size: int | None) -> StoredObject:
        return await self._backend.put(
            part_key(upload_id, number), body, content_type="application/octet-stream", precondition=Precondition()
        )

    async def stored(self, upload_id: str) -> dict[int, StoredObject]:
        prefix = upload_prefix(upload_id) + PART_NAME
        found = await self._backend.list(prefix, after=None, limit=MAX_PART_NUMBER)
        return {int(info.key.removeprefix(prefix)): info for info in found}

    async def assemble(
        self,
        upload_id: str,
        key: str,
        chosen: Sequence[tuple[int, StoredObject]],
        *,
        content_type: str,
        metadata: Mapping[str, str],
        etag: str | None,
    ) -> StoredObject:
        pieces = [Piece(info.key, 0, info.size) for _, info in chosen]
        return await self._backend.compose(key, pieces, content_type=content_type, metadata=metadata, etag=etag)
