"""What every S3 handler is given: the backend and limits (`S3Context`), and the request (`S3Request`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from services.storaged.backends.base import Backend
from services.storaged.backends.parts import PartStore
from services.storaged.keys import MAX_KEY_BYTES, check_public_key
from services.storaged.responses import META_HEADER_PREFIX
from services.storaged.s3.payload import read_verified, verified_body
from services.storaged.schemas import reserved_prefix
from shared.errors import LakehouseError
from shared.keys.records import KeyRecord
from shared.s3.errors import S3Error
from shared.s3.sigv4 import Authorization
from shared.web.body import capped_stream

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MAX_XML_BYTES = 2 << 20  # a DeleteObjects of 1,000 long keys, or a CompleteMultipartUpload of 10,000 parts


@dataclass(frozen=True, slots=True)
class S3Context:
    backend: Backend
    parts: PartStore  # where multipart uploads keep their parts: the backend's own kind
    region: str
    max_put_bytes: int
    received: Callable[[int], None]  # storaged's byte counters, as the native API counts them
    sent: Callable[[int], None]


def check_bucket_name(bucket: str) -> str:
    """S3's naming rules (3-63 lower-case letters, digits, dots, hyphens; not an IP address), then the reserved ones."""
    if not BUCKET_NAME.match(bucket) or IP_ADDRESS.match(bucket) or ".." in bucket:
        raise S3Error(
            "InvalidBucketName",
            "The specified bucket is not valid: a bucket name is 3 to 63 lower-case letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit",
            resource=f"/{bucket}",
        )
    prefix = reserved_prefix(bucket + "/")
    if prefix is not None:
        raise S3Error(
            "AccessDenied", f"bucket {bucket!r} is the reserved prefix {prefix!r} of the stack", resource=f"/{bucket}"
        )
    return bucket


@dataclass(frozen=True, slots=True)
class S3Request:
    """One S3 request whose signature held: the bucket and key its path names, and its body as checked bytes."""

    request: Request
    auth: Authorization
    bucket: str  # "" for the service itself (ListBuckets)
    key: str  # "" for the bucket itself
    client: KeyRecord | None = None  # the client key that signed, if one did (not `[s3_api]`'s pair)

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def resource(self) -> str:
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    @property
    def native_key(self) -> str:
        """The storaged key of the object: the bucket is its first segment."""
        key = f"{self.bucket}/{self.key}"
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise S3Error(
                "KeyTooLongError",
                f"Your key is too long: the bucket name, a slash and the key are at most {MAX_KEY_BYTES} bytes here",
                resource=self.resource,
            )
        try:
            return check_public_key(key)
        except LakehouseError as exc:
            raise S3Error.from_native(exc, resource=self.resource) from None

    @property
    def metadata(self) -> dict[str, str]:
        """The request's x-amz-meta-* headers, names without the prefix."""
        return {
            name.removeprefix(META_HEADER_PREFIX): value
            for name, value in self.request.headers.items()
            if name.startswith(META_HEADER_PREFIX)
        }

    def body(self, max_bytes: int) -> AsyncIterator[bytes]:
        return verified_body(capped_stream(self.request, max_bytes), self.auth, self.headers)

    async def read_xml(self) -> bytes:
        return await read_verified(
            capped_stream(self.request, MAX_XML_BYTES), self.auth, self.headers, limit=MAX_XML_BYTES
        )
