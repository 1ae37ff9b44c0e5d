"""The signature and body checks against AWS's own worked example (S3 API reference, "Signature Calculations for
the Authorization Header: Transferring Payload in Multiple Chunks"): the published seed and chunk signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.storaged.s3.payload import verified_body
from shared.s3.errors import STATUS_BY_S3_CODE, S3Error, S3ErrorCode
from shared.s3.sigv4 import Authorization, Verifier

SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
HEADERS = {
    "host": "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        f"x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}"
    ),
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "content-length": "66824",
}
SECRETS = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
THEN = datetime(2013, 5, 24, 0, 1, tzinfo=UTC)


def scope(headers: dict[str, str]) -> dict[str, object]:
    path = b"/examplebucket/chunkObject.txt"
    return {
        "type": "http",
        "method": "PUT",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def chunked_body(signatures: tuple[str, ...] = CHUNK_SIGNATURES) -> bytes:
    first, second, last = signatures
    return (
        f"10000;chunk-signature={first}\r\n".encode() + b"a" * 65536 + b"\r\n"
        + f"400;chunk-signature={second}\r\n".encode() + b"a" * 1024 + b"\r\n"
        + f"0;chunk-signature={last}\r\n\r\n".encode()
    )  # fmt: skip


async def decoded(body: bytes, auth: Authorization, *, piece: int = 7000) -> bytes:
    async def raw() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    return b"".join([chunk async for chunk in verified_body(raw(), auth, HEADERS)])


def test_every_s3_error_code_has_its_status() -> None:
    assert set(STATUS_BY_S3_CODE) == set(S3ErrorCode.__args__)  # type: ignore[attr-defined]


def test_the_published_seed_signature_verifies() -> None:
    auth = Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS), now=THEN)
    assert (auth.access_key_id, auth.signature) == ("AKIAIOSFODNN7EXAMPLE", SEED)


@pytest.mark.parametrize("piece", [1, 7000, 1 << 20])
async def test_the_published_chunks_decode_to_the_object(piece: int) -> None:
    auth = Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS), now=THEN)
    assert await decoded(chunked_body(), auth, piece=piece) == b"a" * 66560


async def test_a_changed_chunk_fails_its_signature() -> None:
    auth = Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS), now=THEN)
    body = chunked_body().replace(b"a" * 1024, b"b" + b"a" * 1023)
    with pytest.raises(S3Error) as exc:
        await decoded(body, auth)
    assert exc.value.code == "SignatureDoesNotMatch"


async def test_a_dropped_final_chunk_is_an_incomplete_body() -> None:
    auth = Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS), now=THEN)
    body = chunked_body().rpartition(b"0;chunk-signature=")[0]
    with pytest.raises(S3Error) as exc:
        await decoded(body, auth)
    assert exc.value.code == "IncompleteBody"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"x-amz-storage-class": "STANDARD"}, "SignatureDoesNotMatch"),
        ({"x-amz-date": "20130524T000001Z"}, "SignatureDoesNotMatch"),
        ({"authorization": HEADERS["authorization"].replace("us-east-1", "eu-west-1")}, "AuthorizationHeaderMalformed"),
        ({"authorization": HEADERS["authorization"].replace("AKIAIOSFODNN7", "AKIAOTHER")}, "InvalidAccessKeyId"),
        ({"authorization": "AWS4-HMAC-SHA256 Credential=x"}, "AuthorizationHeaderMalformed"),
    ],
)
def test_a_changed_request_is_refused(change: dict[str, str], code: str) -> None:
    with pytest.raises(S3Error) as exc:
        Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS | change), now=THEN)
    assert exc.value.code == code


def test_a_request_signed_long_ago_is_too_skewed() -> None:
    with pytest.raises(S3Error) as exc:
        Verifier(SECRETS.get, region="us-east-1").verify(scope(HEADERS), now=datetime(2013, 5, 24, 0, 16, tzinfo=UTC))
    assert exc.value.code == "RequestTimeTooSkewed"
