"""An S3 request's body as the backend should see it: aws-chunked decoded, and every digest it declares checked.

A body declares its integrity in up to three ways: `x-amz-content-sha256` (a SHA-256 of it, or aws-chunked with a
signature per chunk, or unsigned), an `x-amz-checksum-<algorithm>` header or trailer, and `Content-MD5`. Each is
checked as the bytes go by; a mismatch raises before the iterator ends, so the backend, which only commits a body
that ended, stores nothing of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from awscrt import checksums

from shared.s3.errors import S3Error
from shared.s3.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, Authorization, hmac_hex

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
MAX_CHUNK_HEADER = 4096  # "<hex size>;chunk-signature=<64 hex>\r\n" is ~90 bytes; anything near this is not one


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class CrtChecksum:
    """A running checksum of the AWS Common Runtime (CRC32C, CRC64NVME), `width` bytes wide."""

    def __init__(self, update: Callable[[bytes, int], int], width: int) -> None:
        self.function = update
        self.width = width
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = self.function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width, "big")


# The x-amz-checksum-* algorithms (every one S3 has), and how each is computed (its value is the base64 of the digest).
CHECKSUMS: dict[str, Callable[[], Digest]] = {
    "crc32": Crc32,
    "crc32c": lambda: CrtChecksum(checksums.crc32c, 4),
    "crc64nvme": lambda: CrtChecksum(checksums.crc64nvme, 8),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}


@dataclass
class _Expected:
    """One declared digest of the decoded body: what it is called in errors, its digest, the value to match."""

    name: str
    digest: Digest
    value: str | None  # base64; None for a trailer not read yet
    trailer: str | None = None


def _checksum_header(headers: Mapping[str, str]) -> list[_Expected]:
    expected: list[_Expected] = []
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    for algorithm, make in CHECKSUMS.items():
        name = f"x-amz-checksum-{algorithm}"
        value = headers.get(name)
        if value is None and trailer != name:
            continue
        expected.append(_Expected(algorithm.upper(), make(), value, name if value is None else None))
    md5 = headers.get("content-md5")
    if md5 is not None:
        try:
            if len(base64.b64decode(md5, validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") from None
        expected.append(_Expected("Content-MD5", hashlib.md5(usedforsecurity=False), md5))
    return expected


@dataclass
class _Buffer:
    """Bytes of an aws-chunked body not yet parsed, read on demand from the raw stream."""

    raw: AsyncIterator[bytes]
    data: bytearray = field(default_factory=bytearray)

    async def fill(self) -> bool:
        try:
            self.data += await anext(self.raw)
        except StopAsyncIteration:
            return False
        return True

    async def line(self) -> bytes:
        while (end := self.data.find(b"\r\n")) < 0:
            if len(self.data) > MAX_CHUNK_HEADER or not await self.fill():
                raise S3Error("IncompleteBody", "the aws-chunked body ended inside a chunk header")
        line = bytes(self.data[:end])
        del self.data[: end + 2]
        return line

    async def take(self, size: int) -> AsyncIterator[bytes]:
        while size:
            if not self.data and not await self.fill():
                raise S3Error("IncompleteBody", "the aws-chunked body ended inside a chunk")
            part = bytes(self.data[:size])
            del self.data[: len(part)]
            size -= len(part)
            yield part


def _chunk_header(line: bytes) -> tuple[int, str | None]:
    size_text, _, extension = line.partition(b";")
    try:
        size = int(size_text, 16)
    except ValueError:
        raise S3Error(
            "IncompleteBody", "an aws-chunked chunk header is not '<hex size>[;chunk-signature=<hex>]'"
        ) from None
    signature = None
    if extension.startswith(b"chunk-signature="):
        signature = extension.removeprefix(b"chunk-signature=").decode("latin-1")
    return size, signature


async def _dechunk(raw: AsyncIterator[bytes], auth: Authorization, expected: list[_Expected]) -> AsyncIterator[bytes]:
    signed = auth.payload_hash == STREAMING_SIGNED
    previous = auth.signature
    buffer = _Buffer(raw)
    while True:
        size, signature = _chunk_header(await buffer.line())
        chunk_hash = hashlib.sha256()
        async for part in buffer.take(size):
            chunk_hash.update(part)
            yield part
        if signed:
            # Each chunk is signed over the previous chunk's signature: none can be dropped, reordered or changed.
            lines = (CHUNK_ALGORITHM, auth.amz_date, auth.scope, previous, EMPTY_SHA256, chunk_hash.hexdigest())
            to_sign = "\n".join(lines)
            wanted = hmac_hex(auth.signing_key, to_sign)
            if signature is None or not hmac.compare_digest(wanted, signature):
                raise S3Error("SignatureDoesNotMatch", "a chunk signature of the aws-chunked body does not match")
            previous = wanted
        if size == 0:
            break
        if await buffer.line() != b"":
            raise S3Error("IncompleteBody", "an aws-chunked chunk is longer than its header says")
    trailers: dict[str, str] = {}
    while line := await buffer.line():
        name, _, value = line.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()
    for item in expected:
        if item.trailer is not None:
            item.value = trailers.get(item.trailer)
            if item.value is None:
                raise S3Error("InvalidRequest", f"the body declared the trailer {item.trailer} but did not send it")


def _mismatch(item: _Expected) -> S3Error:
    if item.name == "Content-MD5":
        return S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
    return S3Error("BadDigest", f"The {item.name} you specified did not match the calculated checksum.")


async def verified_body(
    raw: AsyncIterator[bytes], auth: Authorization, headers: Mapping[str, str]
) -> AsyncIterator[bytes]:
    """The decoded body of a request `auth` admitted; raises S3Error (before ending) where a digest does not match."""
    expected = _checksum_header(headers)
    declared = auth.payload_hash
    content_sha256 = None
    if declared in (STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER):
        body = _dechunk(raw, auth, expected)
    elif declared == UNSIGNED_PAYLOAD:
        body = raw
    elif len(declared) == 64 and all(c in "0123456789abcdef" for c in declared):
        body, content_sha256 = raw, hashlib.sha256()
    else:
        raise S3Error("InvalidArgument", f"x-amz-content-sha256 {declared[:80]!r} is not a SHA-256 or a known mode")
    decoded_length = headers.get("x-amz-decoded-content-length")
    received = 0
    async for chunk in body:
        received += len(chunk)
        if content_sha256 is not None:
            content_sha256.update(chunk)
        for item in expected:
            item.digest.update(chunk)
        if chunk:
            yield chunk
    if content_sha256 is not None and content_sha256.hexdigest() != declared:
        raise S3Error(
            "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    if decoded_length is not None and decoded_length.isdigit() and int(decoded_length) != received:
        raise S3Error(
            "IncompleteBody", "You did not provide the number of bytes specified by x-amz-decoded-content-length"
        )
    for item in expected:
        if base64.b64encode(item.digest.digest()).decode() != item.value:
            raise _mismatch(item)


async def read_verified(
    raw: AsyncIterator[bytes], auth: Authorization, headers: Mapping[str, str], *, limit: int
) -> bytes:
    """A small body (an XML request) whole, checked; MalformedXML-sized refusal past `limit` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in verified_body(raw, auth, headers):
        size += len(chunk)
        if size > limit:
            raise S3Error("InvalidRequest", f"this request's body may be at most {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
