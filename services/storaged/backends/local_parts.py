"""The local backend's part store: parts written in place into the object-to-be, so completing an upload copies nothing.

S3 clients cut an upload into parts of one size: boto3, aws-cli, s3fs, pyarrow and the minio SDK send every part but
the last at the same length. The first part to arrive with at least S3's 5 MiB minimum fixes that length as the
upload's stride (`stride`, created once). Part N of at most the stride is then written at (N - 1) x stride into
`assembly`, a sparse file under the upload's prefix, fdatasync'ed, and only then recorded in `placed-0000N` (its size
and MD5): a part answered is durable, and a part cut short leaves no record. A part that does not fit (longer than the
stride, of unknown length, or too far out) is an object of its own, as ObjectParts keeps one.

On completion, when the chosen parts are 1..n, all placed and all but the last exactly the stride long — every upload
of those clients — `assembly`, cut to its length, is renamed to be the object: its bytes were written once, as a
single PUT's are, where joining part files wrote them twice. Anything else is composed from the assembly's regions
and the parts of their own, with a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence

from anyio import to_thread

from services.storaged.backends.base import KeyLocks, Piece, Precondition, StoredObject, read_whole, single
from services.storaged.backends.local import LocalBackend, write_blocks
from services.storaged.backends.local_files import info_of
from services.storaged.backends.parts import ObjectParts, part_key, upload_prefix
from shared.errors import LakehouseError

MIN_STRIDE = 5 << 20  # S3's smallest part but the last: a shorter one may be the last part, so it sets no stride
MAX_ASSEMBLY_BYTES = 1 << 40  # a part placed past this (ext4 allows 16 TiB) is kept as an object of its own
STRIDE = "stride"
ASSEMBLY = "assembly"
PLACED = "placed-"
RECORD_TYPE = "application/json"


def _placed_key(upload_id: str, number: int) -> str:
    return f"{upload_prefix(upload_id)}{PLACED}{number:05d}"


class LocalParts:
    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._objects = ObjectParts(backend)
        self._locks = KeyLocks()  # one writer per part number: two uploads of one part would share its region

    # --- parts -------------------------------------------------------------------------------------------------

    async def put(self, upload_id: str, number: int, body: AsyncIterator[bytes], size: int | None) -> StoredObject:
        placed_key = _placed_key(upload_id, number)
        async with self._locks.hold(part_key(upload_id, number)):
            stride = await self._stride(upload_id, size)
            # A part sent again while one is placed goes beside it, as S3 keeps the old part until the new one is in.
            fits = stride is not None and size is not None and size <= stride and number * stride <= MAX_ASSEMBLY_BYTES
            if stride is None or size is None or not fits or await self._exists(placed_key):
                stored = await self._objects.put(upload_id, number, body, size)
                await self._backend.delete(placed_key)
                return stored
            written, etag = await self._write_region(upload_prefix(upload_id) + ASSEMBLY, (number - 1) * stride, body)
            if written != size:
                raise LakehouseError("invalid_request", f"the part is {written} bytes, not the {size} it declared")
            stored = await self._record(placed_key, written, etag)
            await self._backend.delete(part_key(upload_id, number))
            return stored

    async def _exists(self, key: str) -> bool:
        try:
            await (await self._backend.open(key)).aclose()
        except LakehouseError as exc:
            if exc.code != "not_found":
                raise
            return False
        return True

    async def _record(self, key: str, size: int, etag: str) -> StoredObject:
        """Record a placed part (after its bytes are durable): what makes it a part of the upload."""
        record = json.dumps({"size": size, "etag": etag}).encode()
        stored = await self._backend.put(key, single(record), content_type=RECORD_TYPE, precondition=Precondition())
        return StoredObject(key, size, etag, stored.last_modified)

    async def _stride(self, upload_id: str, size: int | None) -> int | None:
        """The upload's stride, fixed now by this part if there is none yet and it is long enough to be one."""
        key = upload_prefix(upload_id) + STRIDE
        found = await self._read_stride(upload_id)
        if found is not None or size is None or size < MIN_STRIDE:
            return found
        try:
            await self._backend.put(
                key,
                single(str(size).encode()),
                content_type="text/plain",
                precondition=Precondition(if_none_match=True),
            )
        except LakehouseError as exc:
            if exc.code != "precondition_failed":
                raise
            return await self._read_stride(upload_id)  # a part arriving beside this one fixed it first
        return size

    async def _read_stride(self, upload_id: str) -> int | None:
        try:
            return int(await read_whole(self._backend, upload_prefix(upload_id) + STRIDE))
        except LakehouseError as exc:
            if exc.code != "not_found":
                raise
            return None

    async def _write_region(self, key: str, offset: int, body: AsyncIterator[bytes]) -> tuple[int, str]:
        """Write `body` into the file of `key` (created if absent) from `offset`, then fdatasync it; the bytes
        written and their quoted MD5. In place, not atomic: the part's record is what makes it a part."""
        fd = await to_thread.run_sync(self._open_for_writing, key)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            position = offset
            async for block in write_blocks(body):
                await to_thread.run_sync(self._write_at, fd, block, position, digest)
                position += len(block)
            await to_thread.run_sync(os.fdatasync, fd)
            return position - offset, f'"{digest.hexdigest()}"'
        finally:
            os.close(fd)

    def _open_for_writing(self, key: str) -> int:
        *dirs, name = key.split("/")
        fds = self._backend.open_dirs(key, dirs, create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(name, flags, 0o644, dir_fd=fds[-1] if fds else self._backend.root_fd)
        finally:
            for d in fds:
                os.close(d)

    @staticmethod
    def _write_at(fd: int, block: bytes, position: int, digest: hashlib._Hash) -> None:
        digest.update(block)
        view = memoryview(block)
        while view:
            written = os.pwrite(fd, view, position)
            view, position = view[written:], position + written

    async def stored(self, upload_id: str) -> dict[int, StoredObject]:
        prefix = upload_prefix(upload_id)
        parts = await self._objects.stored(upload_id)
        for info in await self._backend.list(prefix + PLACED, after=None, limit=len(parts) + 10_000):
            record = json.loads(await read_whole(self._backend, info.key))
            parts[int(info.key.removeprefix(prefix + PLACED))] = StoredObject(
                info.key, record["size"], record["etag"], info.last_modified
            )
        return parts

    # --- completion --------------------------------------------------------------------------------------------

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
        prefix = upload_prefix(upload_id)
        placed = [info.key.startswith(prefix + PLACED) for _, info in chosen]
        stride = await self._read_stride(upload_id) if any(placed) else None
        numbers = [number for number, _ in chosen]
        in_place = (
            stride is not None
            and etag is not None
            and all(placed)
            and numbers == list(range(1, len(chosen) + 1))
            and all(info.size == stride for _, info in chosen[:-1])
        )
        if in_place and stride is not None and etag is not None:
            size = stride * (len(chosen) - 1) + chosen[-1][1].size
            return await self._adopt(prefix + ASSEMBLY, key, size, content_type, dict(metadata), etag)
        pieces = [
            Piece(prefix + ASSEMBLY, (number - 1) * (stride or 0), info.size)
            if is_placed
            else Piece(info.key, 0, info.size)
            for (number, info), is_placed in zip(chosen, placed, strict=True)
        ]
        return await self._backend.compose(key, pieces, content_type=content_type, metadata=metadata, etag=etag)

    async def _adopt(
        self, source: str, key: str, size: int, content_type: str, metadata: dict[str, str], etag: str
    ) -> StoredObject:
        async with self._backend.locks.hold(key):
            st = await to_thread.run_sync(self._rename_into_place, source, key, size, content_type, metadata, etag)
        return info_of(key, st, etag, content_type, metadata)

    def _rename_into_place(
        self, source: str, key: str, size: int, content_type: str, metadata: dict[str, str], etag: str
    ) -> os.stat_result:
        """Cut the file of `source` to `size`, give it the object's attributes, fsync it, rename it to `key`."""
        *source_dirs, source_name = source.split("/")
        source_fds = self._backend.open_dirs(source, source_dirs, create=False)
        try:
            source_dir = source_fds[-1] if source_fds else self._backend.root_fd
            fd = os.open(source_name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_dir)
            try:
                os.ftruncate(fd, size)
                self._backend.finish(fd, content_type, etag, metadata)
            finally:
                os.close(fd)
            fds = self._backend.open_dirs(key, key.split("/")[:-1], create=True)
            try:
                dir_fd = fds[-1] if fds else self._backend.root_fd
                return self._backend.commit(key, dir_fd, source_name, Precondition(), temp_dir_fd=source_dir)
            finally:
                for d in fds:
                    os.close(d)
        finally:
            for d in source_fds:
                os.close(d)
