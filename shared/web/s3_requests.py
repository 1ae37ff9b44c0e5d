"""Which requests are S3's: outside `/v1/`, signed with AWS Signature V4 (an `Authorization: AWS4-HMAC-SHA256 …`
header, or `X-Amz-Algorithm` in the query of a presigned URL).

The gateway forwards these to storaged, and storaged serves them with its S3 API; everything else outside `/v1/`
keeps its meaning (console, `/health`, `/metrics`) and the bearer-token rule. Both sides ask this one predicate.
A bucket name is 3 to 63 characters, so `/v1/…` is never an S3 path.
"""

from __future__ import annotations

from starlette.types import Scope

from shared.registry import FAMILY_PREFIX

SIGV4_ALGORITHM = b"AWS4-HMAC-SHA256"


def is_s3_request(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["path"].startswith(FAMILY_PREFIX):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            signed: bool = value.startswith(SIGV4_ALGORITHM + b" ")
            return signed
    query: bytes = scope.get("query_string", b"")
    return b"X-Amz-Algorithm=" in query
