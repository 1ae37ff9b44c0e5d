"""Multipart uploads: parts kept under the S3 API's reserved prefix, assembled into the object on completion.

An upload is `_s3/uploads/<id>/upload.json` (bucket, key, Content-Type, metadata, when it began) beside its parts,
which the backend's part store keeps (backends/parts.py); nothing of it is visible as an object until
CompleteMultipartUpload makes the whole object at once (a reader sees the old object or the new one, never a part).
Its ETag is S3's: the MD5 of the parts' MD5s, then `-<number of parts>`, so clients that check it (aws-cli, s3fs)
are satisfied.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from services.storaged.backends.base import (
    DEFAULT_CONTENT_TYPE,
    Backend,
    Precondition,
    StoredObject,
    read_whole,
    single,
)
from services.storaged.backends.parts import MAX_PART_NUMBER, UPLOADS, upload_prefix
from services.storaged.ranges import Span
from services.storaged.s3.buckets import require_bucket
from services.storaged.s3.context import S3Context, S3Request
from services.storaged.s3.objects import copy_source, open_copy_source
from services.storaged.s3.xml import Node, child_text, children, document, parse, timestamp
from shared.errors import LakehouseError
from shared.s3.errors import S3Error

MIN_PART_BYTES = 5 << 20  # every part but the last, as S3 requires
XML = "application/xml"
COPY_SOURCE = "x-amz-copy-source"  # an UploadPart with this header is UploadPartCopy
COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _no_such_upload(s3: S3Request) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or "
        "completed.",
        resource=s3.resource,
    )


async def _read_record(context: S3Context, key: str) -> dict[str, Any]:
    """An upload's record (upload.json), read whole."""
    record: dict[str, Any] = json.loads(await read_whole(context.backend, key))
    return record


async def _upload(context: S3Context, s3: S3Request) -> dict[str, Any]:
    """The upload named by ?uploadId, which must be one for this bucket and key."""
    upload_id = s3.query.get("uploadId", "")
    if not upload_id.isalnum():
        raise _no_such_upload(s3)
    try:
        upload = await _read_record(context, upload_prefix(upload_id) + "upload.json")
    except LakehouseError as exc:
        if exc.code == "not_found":
            raise _no_such_upload(s3) from None
        raise
    if upload["bucket"] != s3.bucket or upload["key"] != s3.key:
        raise _no_such_upload(s3)
    upload["id"] = upload_id
    return upload


async def create_upload(context: S3Context, s3: S3Request) -> Response:
    s3.native_key  # noqa: B018 - the key is checked before anything is written
    await require_bucket(context, s3)
    upload_id = secrets.token_hex(16)
    upload = {
        "bucket": s3.bucket,
        "key": s3.key,
        "content_type": s3.headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        "metadata": s3.metadata,
        "initiated": datetime.now(UTC).isoformat(),
    }
    await context.backend.put(
        upload_prefix(upload_id) + "upload.json",
        single(json.dumps(upload).encode()),
        content_type="application/json",
        precondition=Precondition(if_none_match=True),
    )
    body = document("InitiateMultipartUploadResult", [("Bucket", s3.bucket), ("Key", s3.key), ("UploadId", upload_id)])
    return Response(body, media_type=XML)


def _part_number(s3: S3Request) -> int:
    raw = s3.query.get("partNumber", "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive")
    return int(raw)


async def upload_part(context: S3Context, s3: S3Request) -> Response:
    number = _part_number(s3)
    upload = await _upload(context, s3)
    if COPY_SOURCE in s3.headers:
        return await _upload_part_copy(context, s3, upload["id"], number)
    info = await context.parts.put(upload["id"], number, s3.body(context.max_put_bytes), _declared_size(s3))
    context.received(info.size)
    return Response(status_code=200, headers={"etag": info.etag})


def _copy_range(header: str | None, size: int) -> Span | None:
    """The span x-amz-copy-source-range names (`bytes=first-last`, both given, inside the object); None: all of it."""
    if header is None:
        return None
    match = COPY_RANGE.match(header.strip())
    if match is None or int(match.group(2)) < int(match.group(1)):
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the "
            "zero-based offsets of the first and last bytes to copy",
        )
    first, last = int(match.group(1)), int(match.group(2))
    if last >= size:
        raise S3Error("InvalidRange", f"The requested range is not satisfiable (the source is {size} bytes)")
    return Span(first, last)


def _declared_size(s3: S3Request) -> int | None:
    """The part's length as the request declares it: the decoded length of an aws-chunked body, else Content-Length."""
    raw = s3.headers.get("x-amz-decoded-content-length") or s3.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


async def _upload_part_copy(context: S3Context, s3: S3Request, upload_id: str, number: int) -> Response:
    """UploadPartCopy: the part is (a range of) an existing object, copied inside the store."""
    handle = await open_copy_source(context, s3, copy_source(s3))
    try:
        span = _copy_range(s3.headers.get("x-amz-copy-source-range"), handle.info.size)
        size = handle.info.size if span is None else span.length
        info = await context.parts.put(upload_id, number, handle.stream(span), size)
    finally:
        await handle.aclose()
    body = document("CopyPartResult", [("LastModified", timestamp(info.last_modified)), ("ETag", info.etag)])
    return Response(body, media_type=XML)


async def list_parts(context: S3Context, s3: S3Request) -> Response:
    upload = await _upload(context, s3)
    parts = await context.parts.stored(upload["id"])
    marker_raw = s3.query.get("part-number-marker", "0")
    max_raw = s3.query.get("max-parts", "1000")
    if not marker_raw.isdigit() or not max_raw.isdigit():
        raise S3Error("InvalidArgument", "part-number-marker and max-parts must be non-negative integers")
    after, most = int(marker_raw), min(int(max_raw), 1000)
    numbers = [n for n in sorted(parts) if n > after]
    shown, truncated = numbers[:most], len(numbers) > most
    entries: list[Node] = [
        (
            "Part",
            [
                ("PartNumber", n),
                ("LastModified", timestamp(parts[n].last_modified)),
                ("ETag", parts[n].etag),
                ("Size", parts[n].size),
            ],
        )
        for n in shown
    ]
    head: list[Node] = [
        ("Bucket", s3.bucket),
        ("Key", s3.key),
        ("UploadId", upload["id"]),
        ("PartNumberMarker", after),
        ("NextPartNumberMarker", shown[-1] if shown else after),
        ("MaxParts", most),
        ("IsTruncated", truncated),
        ("StorageClass", "STANDARD"),
    ]
    return Response(document("ListPartsResult", [*head, *entries]), media_type=XML)


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    request = parse(body, "CompleteMultipartUpload")
    wanted: list[tuple[int, str]] = []
    for part in children(request, "Part"):
        number, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise S3Error("MalformedXML", "every <Part> needs a <PartNumber> and an <ETag>")
        wanted.append((int(number), etag.strip()))
    if not wanted:
        raise S3Error("MalformedXML", "a CompleteMultipartUpload names at least one part")
    return wanted


def _normalized(etag: str) -> str:
    return etag.strip().strip('"')


def multipart_etag(parts: list[StoredObject]) -> str | None:
    """S3's ETag of an object assembled from `parts`: the MD5 of their MD5s, then -N. None when a part's ETag is no
    plain MD5 (on the s3 backend a large part is itself stored in parts): that backend keeps its server's ETag."""
    digests = [_normalized(info.etag) for info in parts]
    if not all(len(d) == 32 and all(c in "0123456789abcdef" for c in d) for d in digests):
        return None
    md5s = b"".join(bytes.fromhex(d) for d in digests)
    return f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"'


async def complete_upload(context: S3Context, s3: S3Request) -> Response:
    upload = await _upload(context, s3)
    wanted = _requested_parts(await s3.read_xml())
    numbers = [n for n, _ in wanted]
    if numbers != sorted(set(numbers)):
        raise S3Error(
            "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number."
        )
    stored = await context.parts.stored(upload["id"])
    chosen: list[tuple[int, StoredObject]] = []
    for number, etag in wanted:
        info = stored.get(number)
        if info is None or _normalized(info.etag) != _normalized(etag):
            raise S3Error(
                "InvalidPart",
                f"One or more of the specified parts could not be found (part {number}), or its ETag does not match.",
            )
        chosen.append((number, info))
    for _, info in chosen[:-1]:
        if info.size < MIN_PART_BYTES:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
    assembled_etag = multipart_etag([info for _, info in chosen])

    written = await context.parts.assemble(
        upload["id"],
        s3.native_key,
        chosen,
        content_type=upload["content_type"],
        metadata=upload["metadata"],
        etag=assembled_etag,
    )
    await remove_upload(context.backend, upload["id"])
    body = document(
        "CompleteMultipartUploadResult",
        [("Location", f"/{s3.bucket}/{s3.key}"), ("Bucket", s3.bucket), ("Key", s3.key), ("ETag", written.etag)],
    )
    return Response(body, media_type=XML)


async def remove_upload(backend: Backend, upload_id: str) -> None:
    """Delete an upload's parts and its record (the record last, so an interrupted removal is still an upload)."""
    pieces = await backend.list(upload_prefix(upload_id), after=None, limit=MAX_PART_NUMBER + 10)  # + record, stride…
    for info in sorted(pieces, key=lambda info: info.key.endswith("/upload.json")):
        await backend.delete(info.key)


async def abort_upload(context: S3Context, s3: S3Request) -> Response:
    upload = await _upload(context, s3)
    await remove_upload(context.backend, upload["id"])
    return Response(status_code=204)


async def list_uploads(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    prefix = s3.query.get("prefix", "")
    found: list[tuple[str, str, datetime]] = []
    for info in await context.backend.list(UPLOADS, after=None, limit=100_000):
        if not info.key.endswith("/upload.json"):
            continue
        upload = await _read_record(context, info.key)
        if upload["bucket"] != s3.bucket or not upload["key"].startswith(prefix):
            continue
        upload_id = info.key.removeprefix(UPLOADS).partition("/")[0]
        found.append((upload["key"], upload_id, datetime.fromisoformat(upload["initiated"])))
    entries: list[Node] = [
        ("Upload", [("Key", key), ("UploadId", upload_id), ("Initiated", timestamp(initiated))])
        for key, upload_id, initiated in sorted(found)
    ]
    head: list[Node] = [("Bucket", s3.bucket), ("Prefix", prefix), ("MaxUploads", 1000), ("IsTruncated", False)]
    return Response(document("ListMultipartUploadsResult", [*head, *entries]), media_type=XML)
