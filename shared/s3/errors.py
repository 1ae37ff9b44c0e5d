"""S3's error shape: `<Error><Code/><Message/><Resource/><RequestId/></Error>` with the status S3 gives each code.

One table of codes, and one of how a native storaged error (a LakehouseError from a backend or a key check)
reads to an S3 client, so the two APIs refuse the same things with each protocol's own words.
"""

from __future__ import annotations

from typing import Literal

from starlette.responses import Response

from shared.errors import ErrorCode, LakehouseError
from shared.s3.requests import error_xml, request_id

S3ErrorCode = Literal[
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "BadDigest",
    "BucketAlreadyOwnedByYou",
    "BucketNotEmpty",
    "EntityTooLarge",
    "EntityTooSmall",
    "IncompleteBody",
    "InternalError",
    "InvalidAccessKeyId",
    "InvalidArgument",
    "InvalidBucketName",
    "InvalidDigest",
    "InvalidPart",
    "InvalidPartOrder",
    "InvalidRange",
    "InvalidRequest",
    "KeyTooLongError",
    "MalformedXML",
    "MethodNotAllowed",
    "MissingContentLength",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchUpload",
    "NotImplemented",
    "PreconditionFailed",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "SlowDown",
    "XAmzContentSHA256Mismatch",
]

# The status S3 answers each code with (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); a test
# keeps it equal to S3ErrorCode.
STATUS_BY_S3_CODE: dict[S3ErrorCode, int] = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,  # S3's throttle: SDKs back off and retry it
    "XAmzContentSHA256Mismatch": 400,
}

# A native refusal as S3 words it. Codes not here (a bug, an upstream failure) are InternalError, message kept out.
S3_CODE_BY_NATIVE: dict[ErrorCode, S3ErrorCode] = {
    "invalid_request": "InvalidArgument",
    "forbidden": "AccessDenied",
    "unauthorized": "AccessDenied",
    "not_found": "NoSuchKey",
    "key_conflict": "InvalidArgument",
    "precondition_failed": "PreconditionFailed",
    "payload_too_large": "EntityTooLarge",
    "range_not_satisfiable": "InvalidRange",
    "method_not_allowed": "MethodNotAllowed",
    "not_implemented": "NotImplemented",
    "service_unavailable": "ServiceUnavailable",
    "upstream_unavailable": "ServiceUnavailable",
    "rate_limited": "SlowDown",
}


class S3Error(Exception):
    """An S3 refusal: raised anywhere in the S3 path, answered as S3's XML by `s3_error_response`."""

    def __init__(
        self,
        code: S3ErrorCode,
        message: str,
        *,
        resource: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code: S3ErrorCode = code
        self.message = message
        self.resource = resource
        self.status = STATUS_BY_S3_CODE[code]
        self.headers = headers or {}

    @classmethod
    def from_native(cls, exc: LakehouseError, *, resource: str = "") -> S3Error:
        """The S3 reading of a native refusal; an unmapped code is InternalError with a message that says nothing
        of the server (the native message may name a path)."""
        code = S3_CODE_BY_NATIVE.get(exc.code)
        if code is None:
            return cls("InternalError", "We encountered an internal error. Please try again.", resource=resource)
        return cls(code, exc.message, resource=resource, headers=exc.headers)


def s3_error_response(exc: S3Error, *, request: str | None = None, head: bool = False) -> Response:
    """The XML answer of `exc`; a HEAD answer carries the status and headers only, as S3's does."""
    rid = request or request_id()
    body = b"" if head else error_xml(exc.code, exc.message, resource=exc.resource, request=rid)
    headers = {**exc.headers, "x-amz-request-id": rid}
    return Response(body, status_code=exc.status, media_type="application/xml", headers=headers)
