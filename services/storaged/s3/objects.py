"""Objects: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.

An object at `s3://B/K` is exactly the native object `B/K`: the same bytes, ETag, Content-Type and user metadata
whichever API wrote it. GET and HEAD share the native API's response (and its sendfile path for large files).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from starlette.responses import Response

from services.storaged.backends.base import DEFAULT_CONTENT_TYPE, ObjectHandle, Precondition
from services.storaged.keys import check_public_key
from services.storaged.ranges import resolve_range
from services.storaged.responses import ObjectResponse, not_modified
from services.storaged.s3.buckets import bucket_exists, require_bucket
from services.storaged.s3.context import S3Context, S3Request
from services.storaged.s3.xml import Node, child_text, children, document, parse, timestamp
from shared.errors import LakehouseError
from shared.s3.errors import S3Error
from shared.web.etags import etag_matches

MAX_DELETE_KEYS = 1000
EMPTY_ETAG = f'"{hashlib.md5(b"", usedforsecurity=False).hexdigest()}"'
XML = "application/xml"
# GetObject's query parameters that set a header of this one response (S3 takes them on signed requests only, and
# every request here is signed).
RESPONSE_OVERRIDES = {
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
    "response-content-language": "content-language",
    "response-content-type": "content-type",
    "response-expires": "expires",
}


def _precondition(s3: S3Request) -> Precondition:
    if_none_match = s3.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise S3Error("NotImplemented", "a PutObject supports only If-None-Match: * (create only)")
    return Precondition(if_none_match=if_none_match is not None, if_match=s3.headers.get("if-match"))


async def _directory_marker(context: S3Context, s3: S3Request) -> Response:
    """An empty object whose key ends in "/" (pyarrow, s3fs and Hadoop write one for a "directory"): accepted and not
    stored, since here a prefix exists exactly while it holds objects (a key cannot both be an object and have
    objects under it on the local backend). Any other key ending in "/" is refused by the key rules."""
    await require_bucket(context, s3)
    async for chunk in s3.body(context.max_put_bytes):
        if chunk:
            raise S3Error(
                "InvalidArgument", f"a key ending in '/' can only be an empty directory marker: {s3.key[:200]!r}"
            )
    return Response(status_code=200, headers={"etag": EMPTY_ETAG})


async def put_object(context: S3Context, s3: S3Request) -> Response:
    if s3.key.endswith("/"):
        return await _directory_marker(context, s3)
    key = s3.native_key
    await require_bucket(context, s3)
    info = await context.backend.put(
        key,
        s3.body(context.max_put_bytes),
        content_type=s3.headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        precondition=_precondition(s3),
        metadata=s3.metadata,
    )
    context.received(info.size)
    return Response(status_code=200, headers={"etag": info.etag})


async def _open(context: S3Context, s3: S3Request, key: str) -> ObjectHandle:
    try:
        return await context.backend.open(key)
    except LakehouseError as exc:
        if exc.code == "not_found" and not await bucket_exists(context, s3.bucket):
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=f"/{s3.bucket}") from None
        if exc.code == "not_found":
            raise S3Error("NoSuchKey", "The specified key does not exist.", resource=s3.resource) from None
        raise


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as RFC 9110 says


def _conditional(s3: S3Request, handle: ObjectHandle) -> Response | None:
    """The answer the request's conditions give instead of the object (304 or 412), or None to send it."""
    info = handle.info
    if_match = s3.headers.get("if-match")
    unmodified_since = _since(s3.headers.get("if-unmodified-since"))
    if (if_match is not None and not etag_matches(if_match, info.etag)) or (
        if_match is None and unmodified_since is not None and info.last_modified > unmodified_since
    ):
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    if_none_match = s3.headers.get("if-none-match")
    modified_since = _since(s3.headers.get("if-modified-since"))
    if (if_none_match is not None and etag_matches(if_none_match, info.etag)) or (
        if_none_match is None and modified_since is not None and info.last_modified <= modified_since
    ):
        return not_modified(info)
    return None


async def get_object(context: S3Context, s3: S3Request) -> Response:
    handle = await _open(context, s3, s3.native_key)
    try:
        answer = _conditional(s3, handle)
        if answer is not None:
            await handle.aclose()
            return answer
        span = resolve_range(s3.headers.get("range"), handle.info.size)
    except BaseException:
        await handle.aclose()
        raise
    response = ObjectResponse(handle, span, sent=context.sent)
    for parameter, header in RESPONSE_OVERRIDES.items():
        if parameter in s3.query:
            response.headers[header] = s3.query[parameter]
    return response


async def delete_object(context: S3Context, s3: S3Request) -> Response:
    key = s3.native_key
    await require_bucket(context, s3)
    await context.backend.delete(key)
    return Response(status_code=204)


async def delete_objects(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    request = parse(await s3.read_xml(), "Delete")
    quiet = (child_text(request, "Quiet") or "").strip().lower() == "true"
    objects = children(request, "Object")
    if len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", f"a DeleteObjects request names at most {MAX_DELETE_KEYS} keys")
    results: list[Node] = []
    for entry in objects:
        key = child_text(entry, "Key")
        if key is None:
            raise S3Error("MalformedXML", "every <Object> of a DeleteObjects request needs a <Key>")
        try:
            await context.backend.delete(check_public_key(f"{s3.bucket}/{key}"))
        except LakehouseError as exc:
            refusal = S3Error.from_native(exc)
            results.append(("Error", [("Key", key), ("Code", refusal.code), ("Message", refusal.message)]))
            continue
        if not quiet:
            results.append(("Deleted", [("Key", key)]))
    return Response(document("DeleteResult", results), media_type=XML)


def copy_source(s3: S3Request) -> S3Request:
    """The object x-amz-copy-source names, as a request for it (its bucket and key checked as any other's)."""
    raw = unquote(s3.headers["x-amz-copy-source"]).lstrip("/")
    source, _, version = raw.partition("?")
    if version and not version.startswith("versionId=null"):
        raise S3Error("NotImplemented", "this store keeps no object versions: x-amz-copy-source takes no versionId")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "x-amz-copy-source must be <bucket>/<key> (URL-encoded)")
    return S3Request(s3.request, s3.auth, bucket, key)


async def open_copy_source(context: S3Context, s3: S3Request, source: S3Request) -> ObjectHandle:
    """The object a copy (CopyObject, UploadPartCopy) reads (`source`, from `copy_source`), opened once the
    request's x-amz-copy-source-if-* conditions held."""
    handle = await _open(context, source, source.native_key)
    info = handle.info
    match = s3.headers.get("x-amz-copy-source-if-match")
    none_match = s3.headers.get("x-amz-copy-source-if-none-match")
    if (match is not None and not etag_matches(match, info.etag)) or (
        none_match is not None and etag_matches(none_match, info.etag)
    ):
        await handle.aclose()
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    return handle


async def copy_object(context: S3Context, s3: S3Request) -> Response:
    target = s3.native_key
    await require_bucket(context, s3)
    directive = s3.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
    source = copy_source(s3)
    if source.native_key == target and directive == "COPY":
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes.",
        )
    handle = await open_copy_source(context, s3, source)
    try:
        info = handle.info
        if directive == "COPY":
            content_type, metadata = info.content_type, dict(info.metadata)
        else:
            content_type, metadata = s3.headers.get("content-type") or DEFAULT_CONTENT_TYPE, s3.metadata
        copied = await context.backend.put(
            target, handle.stream(None), content_type=content_type, precondition=Precondition(), metadata=metadata
        )
    finally:
        await handle.aclose()
    body = document("CopyObjectResult", [("LastModified", timestamp(copied.last_modified)), ("ETag", copied.etag)])
    return Response(body, media_type=XML)
