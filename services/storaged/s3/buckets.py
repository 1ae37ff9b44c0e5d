"""Buckets: the first segment of storaged's keyspace.

A bucket exists when it holds an object (ingest's `datasets`, whatever the native API wrote), or when CreateBucket
left its marker under the S3 API's reserved prefix (an empty bucket has no other trace). DeleteBucket removes the
marker of an empty bucket; a bucket with objects is BucketNotEmpty.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from services.storaged.backends.base import Precondition, single
from services.storaged.s3.context import BUCKET_NAME, IP_ADDRESS, S3Context, S3Request, check_bucket_name
from services.storaged.s3.levels import list_level
from services.storaged.s3.xml import Node, document, timestamp
from services.storaged.schemas import RESERVED_PREFIXES, S3_PREFIX
from shared.errors import LakehouseError
from shared.s3.errors import S3Error

MARKERS = S3_PREFIX + "buckets/"
XML = "application/xml"


async def _marker_time(context: S3Context, bucket: str) -> datetime | None:
    try:
        handle = await context.backend.open(MARKERS + bucket)
    except LakehouseError as exc:
        if exc.code == "not_found":
            return None
        raise
    await handle.aclose()
    return handle.info.last_modified


async def _has_objects(context: S3Context, bucket: str) -> bool:
    return bool(await context.backend.list(bucket + "/", after=None, limit=1))


async def bucket_exists(context: S3Context, bucket: str) -> bool:
    return await _has_objects(context, bucket) or await _marker_time(context, bucket) is not None


async def require_bucket(context: S3Context, s3: S3Request) -> None:
    check_bucket_name(s3.bucket)
    if not await bucket_exists(context, s3.bucket):
        raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=f"/{s3.bucket}")


async def list_buckets(context: S3Context, s3: S3Request) -> Response:
    found: dict[str, datetime] = {}
    markers = await context.backend.list(MARKERS, after=None, limit=10_000)
    for info in markers:
        found[info.key.removeprefix(MARKERS)] = info.last_modified
    level = await list_level(context, "", delimiter="/", after=None, max_keys=10_000, exclude=tuple(RESERVED_PREFIXES))
    for prefix, first in level.prefixes:
        name = prefix.removesuffix("/")
        if BUCKET_NAME.match(name) and not IP_ADDRESS.match(name):
            found.setdefault(name, first.last_modified)
    # A key limited to buckets sees its own only.
    shown = sorted(name for name in found if s3.client is None or s3.client.allows_bucket(name))
    buckets = [("Bucket", [("Name", name), ("CreationDate", timestamp(found[name]))]) for name in shown]
    body = document("ListAllMyBucketsResult", [owner(s3), ("Buckets", buckets)])
    return Response(body, media_type=XML)


def owner(s3: S3Request) -> Node:
    """The owner of every bucket and object: the key pair that signed (one store, one owner per key)."""
    return ("Owner", [("ID", s3.auth.access_key_id), ("DisplayName", s3.auth.access_key_id)])


async def create_bucket(context: S3Context, s3: S3Request) -> Response:
    check_bucket_name(s3.bucket)
    await s3.read_xml()  # a CreateBucketConfiguration (LocationConstraint) may come; the one region is ours
    if await bucket_exists(context, s3.bucket):
        if context.region == "us-east-1":
            # S3's legacy answer there: creating a bucket you already own succeeds (elsewhere it is an error).
            return Response(status_code=200, headers={"location": f"/{s3.bucket}"})
        raise S3Error(
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
            resource=f"/{s3.bucket}",
        )
    stamp = datetime.now(UTC).isoformat().encode()
    await context.backend.put(
        MARKERS + s3.bucket, single(stamp), content_type="text/plain", precondition=Precondition()
    )
    return Response(status_code=200, headers={"location": f"/{s3.bucket}"})


async def head_bucket(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    return Response(status_code=200, headers={"x-amz-bucket-region": context.region})


async def delete_bucket(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    if await _has_objects(context, s3.bucket):
        raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=f"/{s3.bucket}")
    await context.backend.delete(MARKERS + s3.bucket)
    return Response(status_code=204)


async def get_bucket_location(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    # S3 answers an empty LocationConstraint for us-east-1, and the region's name for any other.
    region = "" if context.region == "us-east-1" else context.region
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region}</LocationConstraint>'
    )
    return Response(body.encode(), media_type=XML)


async def get_bucket_versioning(context: S3Context, s3: S3Request) -> Response:
    await require_bucket(context, s3)
    # Versioning was never enabled on any bucket here: S3 answers an empty configuration then.
    return Response(document("VersioningConfiguration", []), media_type=XML)
