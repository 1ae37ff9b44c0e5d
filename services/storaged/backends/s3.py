"""The S3 backend (any S3-compatible server) on obstore, the Rust object_store client.

Writes of one key are serialised by this storaged (a lock per key), and a conditional write is checked with a HEAD
under that lock, so the conditions hold even on a server that ignores If-None-Match / If-Match on PUT. A small body
(up to SINGLE_PUT_BYTES, e.g. a manifest) then goes in one PUT that carries the condition too, so that the server
enforces it across several storaged where it can; a larger body is a multipart upload, completed only when the whole
body arrived (a reader never sees part of it) and aborted otherwise (nothing is left behind).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store

from services.storaged.backends.base import (
    DEFAULT_CONTENT_TYPE,
    BackendUnavailable,
    FileRegion,
    KeyLocks,
    Piece,
    Precondition,
    StoredObject,
    check_precondition,
    concatenated,
    excluded,
)
from services.storaged.ranges import Span
from shared.config.s3 import S3Config
from shared.errors import LakehouseError

if TYPE_CHECKING:
    from obstore import GetOptions, PutMode

SINGLE_PUT_BYTES = 5 << 20  # the smallest multipart part S3 accepts: anything smaller goes in one PUT
PART_BYTES = 8 << 20
PART_CONCURRENCY = 4  # parts in flight: bounds the memory of one upload to ~PART_BYTES * this
READ_CHUNK = 1 << 20
LIST_PAGE = 1000
# obstore's attribute names that are not user metadata.
STANDARD_ATTRIBUTES = frozenset(
    {"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type", "Cache-Control", "Storage-Class"}
)


def _not_found(key: str) -> LakehouseError:
    return LakehouseError("not_found", f"no object {key!r}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _modified(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _put_mode(precondition: Precondition) -> PutMode:
    """The condition the server is asked to check as well (one ETag; a list or * is left to the HEAD check)."""
    if precondition.if_none_match:
        return "create"
    tag = (precondition.if_match or "").strip()
    if tag and tag != "*" and "," not in tag:
        return {"e_tag": tag}
    return "overwrite"


@dataclass
class S3Handle:
    info: StoredObject
    store: S3Store

    async def stream(self, span: Span | None) -> AsyncGenerator[bytes, None]:
        if self.info.size == 0:
            return
        # If-Match pins the read to the version whose headers were already sent.
        options: GetOptions = {"if_match": self.info.etag}
        if span is not None:
            options["range"] = (span.start, span.end + 1)
        result = await obstore.get_async(self.store, self.info.key, options=options)
        async for chunk in result.stream(min_chunk_size=READ_CHUNK):
            yield bytes(chunk)

    def file_region(self, span: Span | None) -> FileRegion | None:
        return None

    async def aclose(self) -> None:
        return None


class S3Backend:
    name = "s3"

    def __init__(self, config: S3Config) -> None:
        self.bucket = config.bucket
        self.endpoint = config.endpoint
        self.store: S3Store | None = S3Store(
            config.bucket,
            endpoint=config.endpoint,
            region=config.region,
            access_key_id=config.access_key_id or None,
            secret_access_key=config.secret_access_key.get_secret_value() or None,
            virtual_hosted_style_request=not config.use_path_style,
            client_options={
                "allow_http": config.endpoint.startswith("http://"),
                "connect_timeout": timedelta(seconds=5),
            },
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=30)},
        )
        self._locks = KeyLocks()

    @property
    def _store(self) -> S3Store:
        if self.store is None:
            raise LakehouseError("service_unavailable", "storaged is shutting down")
        return self.store

    async def start(self) -> None:
        where = f"S3 bucket {self.bucket!r} at {self.endpoint}"
        try:
            stream = obstore.list(self._store, prefix="_lakehouse_bucket_check", chunk_size=1)
            await stream.__anext__()
        except StopAsyncIteration:
            return
        except Exception as exc:
            text = str(exc)
            if "NoSuchBucket" in text:
                raise BackendUnavailable(f"{where} does not exist (create it, or set s3.bucket)") from None
            if (
                "403" in text
                or "AccessDenied" in text
                or "InvalidAccessKeyId" in text
                or "SignatureDoesNotMatch" in text
            ):
                raise BackendUnavailable(f"{where} refused the credentials (check s3.access_key_id/secret)") from None
            raise BackendUnavailable(f"{where} is unreachable: {_first_line(exc)}") from None

    async def close(self) -> None:
        # obstore's runtime can crash the interpreter at exit if a store outlives the loop: drop it and let it settle.
        self.store = None
        gc.collect()
        await asyncio.sleep(0.05)

    async def _current_etag(self, key: str) -> str | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return meta["e_tag"]

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
        # Keys other than the standard attributes are the object's user metadata (x-amz-meta-* upstream).
        metadata = {name.lower(): value for name, value in (metadata or {}).items()}
        attributes: dict[str, str] = {**metadata, "Content-Type": content_type}
        async with self._locks.hold(key):
            if precondition.is_conditional:
                check_precondition(key, precondition, await self._current_etag(key))
            head: list[bytes] = []
            head_size = 0
            async for chunk in body:
                head.append(chunk)
                head_size += len(chunk)
                if head_size > SINGLE_PUT_BYTES:
                    break
            else:
                data = b"".join(head)
                try:
                    result = await obstore.put_async(
                        self._store, key, data, attributes=attributes, mode=_put_mode(precondition), use_multipart=False
                    )
                except (AlreadyExistsError, PreconditionError):
                    raise LakehouseError("precondition_failed", f"the condition on {key!r} failed") from None
                now = _modified(datetime.now(UTC))
                return StoredObject(key, len(data), result["e_tag"] or "", now, content_type, metadata)
            counted = [head_size]

            async def rest() -> AsyncIterator[bytes]:
                for chunk in head:
                    yield chunk
                async for chunk in body:
                    counted[0] += len(chunk)
                    yield chunk

            result = await obstore.put_async(
                self._store,
                key,
                rest(),
                attributes=attributes,
                use_multipart=True,
                chunk_size=PART_BYTES,
                max_concurrency=PART_CONCURRENCY,
            )
            now = _modified(datetime.now(UTC))
            return StoredObject(key, counted[0], result["e_tag"] or "", now, content_type, metadata)

    async def compose(
        self, key: str, pieces: Sequence[Piece], *, content_type: str, metadata: Mapping[str, str], etag: str | None
    ) -> StoredObject:
        # Streamed through this process into one upload to the bucket.
        body = concatenated(self, pieces)
        return await self.put(
            key, body, content_type=content_type, precondition=Precondition(), metadata=metadata, etag=etag
        )

    async def open(self, key: str) -> S3Handle:
        try:
            result = await obstore.get_async(self._store, key, options={"head": True})
        except FileNotFoundError:
            raise _not_found(key) from None
        meta = result.meta
        attributes = dict(result.attributes)
        content_type = str(attributes.pop("Content-Type", DEFAULT_CONTENT_TYPE))
        metadata = {
            str(name).lower(): str(value) for name, value in attributes.items() if name not in STANDARD_ATTRIBUTES
        }
        modified = _modified(meta["last_modified"])
        info = StoredObject(key, meta["size"], meta["e_tag"] or "", modified, content_type, metadata)
        return S3Handle(info, self._store)

    async def delete(self, key: str) -> None:
        async with self._locks.hold(key):
            try:
                await obstore.delete_async(self._store, key)
            except FileNotFoundError:
                return

    async def list(
        self, prefix: str, *, after: str | None, limit: int, exclude: Sequence[str] = ()
    ) -> list[StoredObject]:
        # object_store lists whole path segments: list the prefix's directory and filter by the rest.
        directory = prefix.rpartition("/")[0] or None
        offset = after if after is not None and after >= prefix else None
        options: dict[str, Any] = {"prefix": directory, "chunk_size": min(LIST_PAGE, limit + 1)}
        if offset is not None:
            options["offset"] = offset
        found: list[StoredObject] = []
        async for batch in obstore.list(self._store, **options):
            for meta in batch:
                key = meta["path"]
                if not key.startswith(prefix):
                    if key > prefix:
                        return found
                    continue
                if excluded(key, exclude):
                    # S3 cannot skip a range of keys in one listing: a reserved key is passed over one by one.
                    continue
                found.append(StoredObject(key, meta["size"], meta["e_tag"] or "", _modified(meta["last_modified"])))
                if len(found) >= limit:
                    return found
        return found
