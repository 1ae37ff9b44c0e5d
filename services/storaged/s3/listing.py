"""ListObjectsV2 and ListObjects over `levels.list_level`.

A continuation token is the native key the next page starts after, base64-encoded: opaque to the client. ListObjects'
marker is a key of the bucket (or a common prefix the last page ended on).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote

from starlette.responses import Response

from services.storaged.keys import check_prefix
from services.storaged.s3.buckets import owner, require_bucket
from services.storaged.s3.context import S3Context, S3Request
from services.storaged.s3.levels import PAST_EVERYTHING_UNDER, Level, list_level
from services.storaged.s3.xml import Node, document, timestamp
from services.storaged.schemas import RESERVED_PREFIXES
from shared.errors import LakehouseError
from shared.s3.errors import S3Error

MAX_KEYS = 1000


def _token(cursor: str) -> str:
    return base64.urlsafe_b64encode(cursor.encode()).decode()


def _cursor(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


def _max_keys(s3: S3Request) -> int:
    raw = s3.query.get("max-keys", str(MAX_KEYS))
    if not raw.isdigit():
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(int(raw), MAX_KEYS)


def _encoder(s3: S3Request) -> Callable[[str], str]:
    encoding = s3.query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request: encoding-type must be url")
    if encoding == "url":
        return lambda text: quote(text, safe="/")
    return lambda text: text


async def _level(context: S3Context, s3: S3Request, after: str | None) -> tuple[Level, str, str, int]:
    prefix = s3.query.get("prefix", "")
    delimiter = s3.query.get("delimiter", "")
    try:
        check_prefix(prefix)
    except LakehouseError as exc:
        raise S3Error.from_native(exc, resource=s3.resource) from None
    max_keys = _max_keys(s3)
    native = f"{s3.bucket}/{prefix}"
    if max_keys == 0:
        return Level(), prefix, delimiter, 0
    level = await list_level(
        context, native, delimiter=delimiter, after=after, max_keys=max_keys, exclude=tuple(RESERVED_PREFIXES)
    )
    return level, prefix, delimiter, max_keys


def _entries(s3: S3Request, level: Level, encode: Callable[[str], str], *, owners: bool) -> list[Node]:
    strip = len(s3.bucket) + 1
    nodes: list[Node] = []
    for info in level.objects:
        entry: list[Node] = [
            ("Key", encode(info.key[strip:])),
            ("LastModified", timestamp(info.last_modified)),
            ("ETag", info.etag),
            ("Size", info.size),
            ("StorageClass", "STANDARD"),
        ]
        if owners:
            entry.append(owner(s3))
        nodes.append(("Contents", entry))
    for common, _ in level.prefixes:
        nodes.append(("CommonPrefixes", [("Prefix", encode(common[strip:]))]))
    return nodes


async def list_objects_v2(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    encode = _encoder(s3)
    token = s3.query.get("continuation-token")
    start_after = s3.query.get("start-after")
    after = _cursor(token) if token else (f"{s3.bucket}/{start_after}" if start_after else None)
    level, prefix, delimiter, max_keys = await _level(context, s3, after)
    head: list[Node] = [
        ("Name", s3.bucket),
        ("Prefix", encode(prefix)),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("MaxKeys", max_keys),
        ("KeyCount", level.count),
        ("IsTruncated", level.truncated),
        ("EncodingType", s3.query.get("encoding-type")),
        ("ContinuationToken", token),
        ("StartAfter", encode(start_after) if start_after else None),
        ("NextContinuationToken", _token(level.cursor) if level.truncated and level.cursor else None),
    ]
    owners = s3.query.get("fetch-owner", "").lower() == "true"  # V2 names owners only when asked
    body = document("ListBucketResult", [*head, *_entries(s3, level, encode, owners=owners)])
    return Response(body, media_type="application/xml")


async def list_objects_v1(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    encode = _encoder(s3)
    marker = s3.query.get("marker", "")
    after = f"{s3.bucket}/{marker}" if marker else None
    if after is not None and s3.query.get("delimiter") and marker.endswith(s3.query["delimiter"]):
        after += PAST_EVERYTHING_UNDER  # the marker is a common prefix: the next page starts past all it holds
    level, prefix, delimiter, max_keys = await _level(context, s3, after)
    next_marker = None
    if level.truncated and delimiter and level.cursor:
        # The last entry's key (or common prefix): the client passes it back as marker.
        last = max([*(o.key for o in level.objects), *(p for p, _ in level.prefixes)])
        next_marker = encode(last[len(s3.bucket) + 1 :])
    head: list[Node] = [
        ("Name", s3.bucket),
        ("Prefix", encode(prefix)),
        ("Marker", encode(marker)),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("MaxKeys", max_keys),
        ("IsTruncated", level.truncated),
        ("EncodingType", s3.query.get("encoding-type")),
        ("NextMarker", next_marker),
    ]
    body = document("ListBucketResult", [*head, *_entries(s3, level, encode, owners=True)])  # V1 always does
    return Response(body, media_type="application/xml")
