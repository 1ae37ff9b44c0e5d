"""Which requests are S3's: outside `/v1/`, signed with AWS Signature V4 (an `Authorization: AWS4-HMAC-SHA256 …`
header, or `X-Amz-Algorithm` in the query of a presigned URL). Signature V2's forms (`Authorization: AWS key:sig`,
`AWSAccessKeyId=` in the query, what boto3 presigns with by default) count too, so that they meet S3's own refusal
naming the algorithm to use rather than a 404 of the console.

The gateway forwards these to storaged, and storaged serves them with its S3 API; everything else outside `/v1/`
keeps its meaning (console, `/health`, `/metrics`) and the bearer-token rule. Both sides ask this one predicate.
A bucket name is 3 to 63 characters, so `/v1/…` is never an S3 path.
"""

from __future__ import annotations

import re
import secrets
from xml.sax.saxutils import escape

from starlette.types import Scope, Send

from shared.registry import FAMILY_PREFIX

SIGV4_ALGORITHM = b"AWS4-HMAC-SHA256"
SIGNATURE_SCHEMES = (SIGV4_ALGORITHM + b" ", b"AWS ")
QUERY_MARKS = (b"X-Amz-Algorithm=", b"AWSAccessKeyId=")
# What XML 1.0 cannot carry, not even as a character reference (and a lone surrogate UTF-8 cannot encode).
XML_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_s3_request(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["path"].startswith(FAMILY_PREFIX):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            signed: bool = value.startswith(SIGNATURE_SCHEMES)
            return signed
    query: bytes = scope.get("query_string", b"")
    return any(mark in query for mark in QUERY_MARKS)


def request_id() -> str:
    """An id for x-amz-request-id and <RequestId>, as S3 gives one per request (16 hex digits, upper case)."""
    return secrets.token_hex(8).upper()


def xml_text(value: str) -> str:
    """`value` as XML character data: escaped, and a character XML cannot carry written as its Python escape
    (`\\x01`), so that a refused key holding one is named in an answer every XML parser reads."""
    return escape(XML_UNWRITABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), value))


def error_xml(code: str, message: str, *, resource: str, request: str) -> bytes:
    """S3's error document: the one writer of it, for storaged's S3 API and the gateway's answers to S3 clients."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{xml_text(message)}</Message>"
        f"<Resource>{xml_text(resource)}</Resource><RequestId>{request}</RequestId></Error>"
    ).encode()


async def send_s3_error(
    send: Send, status: int, code: str, message: str, *, resource: str = "", headers: dict[str, str] | None = None
) -> None:
    """Answer an S3 client from pure ASGI code (the gateway: a key's refusal, storaged out of reach) in S3's shape."""
    rid = request_id()
    body = error_xml(code, message, resource=resource, request=rid)
    head = [
        (b"content-type", b"application/xml"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amz-request-id", rid.encode()),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
