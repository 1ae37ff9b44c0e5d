"""The S3 API's door: a signed request outside /v1/ is checked, routed by one table, answered in S3's shape.

Routing is S3's: the path's first segment is the bucket (nothing: the service), the rest the key; the operation is
the method plus the subresource the query names (`?uploads`, `?uploadId=`, `?delete`, `?location`, …). Every
refusal is S3's XML error with x-amz-request-id; a fault is logged with its traceback and answered InternalError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.storaged.s3 import buckets, listing, multipart, objects
from services.storaged.s3.client_keys import ClientKeys
from services.storaged.s3.context import S3Context, S3Request
from shared.errors import CLIENT_CLOSED_REQUEST, LakehouseError
from shared.s3.errors import S3Error, s3_error_response
from shared.s3.requests import is_s3_request, request_id
from shared.s3.sigv4 import Verifier

Handler = Callable[[S3Context, S3Request], Awaitable[Response]]
COPY = "x-amz-copy-source"  # a PUT with this header is CopyObject

# (what the path names, method, subresource) -> the operation. One table: a new operation is one row.
OPERATIONS: dict[tuple[str, str, str], Handler] = {
    ("service", "GET", ""): buckets.list_buckets,
    ("bucket", "PUT", ""): buckets.create_bucket,
    ("bucket", "HEAD", ""): buckets.head_bucket,
    ("bucket", "DELETE", ""): buckets.delete_bucket,
    ("bucket", "GET", "location"): buckets.get_bucket_location,
    ("bucket", "GET", "versioning"): buckets.get_bucket_versioning,
    ("bucket", "GET", "list-type"): listing.list_objects_v2,
    ("bucket", "GET", ""): listing.list_objects_v1,
    ("bucket", "GET", "uploads"): multipart.list_uploads,
    ("bucket", "POST", "delete"): objects.delete_objects,
    ("object", "PUT", ""): objects.put_object,
    ("object", "PUT", COPY): objects.copy_object,
    ("object", "GET", ""): objects.get_object,
    ("object", "HEAD", ""): objects.get_object,
    ("object", "DELETE", ""): objects.delete_object,
    ("object", "POST", "uploads"): multipart.create_upload,
    ("object", "PUT", "uploadId"): multipart.upload_part,
    ("object", "GET", "uploadId"): multipart.list_parts,
    ("object", "POST", "uploadId"): multipart.complete_upload,
    ("object", "DELETE", "uploadId"): multipart.abort_upload,
}
# The query names that select an operation, most specific first.
SUBRESOURCES = ("uploadId", "uploads", "delete", "location", "versioning", "list-type")
# S3 subresources this store does not have: refused by name rather than read as a listing or a plain GET.
UNSUPPORTED = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering", "inventory",
        "legal-hold", "lifecycle", "logging", "metrics", "notification", "object-lock", "ownershipControls",
        "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore", "retention",
        "select", "tagging", "torrent", "versionId", "versions", "website",
    }
)  # fmt: skip
# What a client key's record read up to a second ago may answer for a key made or rotated since: read again once.
KEY_MISSES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch"})
DISABLED = (
    "the S3 API is off: set s3_api.access_key_id and s3_api.secret_access_key "
    "(LH_S3_API__ACCESS_KEY_ID, LH_S3_API__SECRET_ACCESS_KEY) and sign with that key pair, "
    "or auth.master_key (LH_AUTH__MASTER_KEY) and sign with a client key's id and secret"
)


def _operation(scope: Scope, request: Request) -> tuple[Handler, str, str]:
    bucket, _, key = scope["path"].removeprefix("/").partition("/")
    level = "object" if key else "bucket" if bucket else "service"
    query = request.query_params
    unsupported = sorted(UNSUPPORTED & query.keys())
    if unsupported:
        raise S3Error("NotImplemented", f"?{unsupported[0]} is not supported by this S3 API")
    subresource = next((name for name in SUBRESOURCES if name in query), "")
    if not subresource and scope["method"] == "PUT" and COPY in request.headers:
        subresource = COPY
    if subresource == "list-type" and query["list-type"] != "2":
        raise S3Error("InvalidArgument", "list-type must be 2")
    handler = OPERATIONS.get((level, scope["method"], subresource))
    if handler is None:
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
    return handler, bucket, key


class S3Api:
    """The ASGI app of the S3 API (`verifier` None: no key pair is configured, so every request is refused)."""

    def __init__(self, context: S3Context, pair: Callable[[str], str | None] | None, keys: ClientKeys) -> None:
        """`pair`: the secret lookup of `[s3_api]`'s key pair, None when there is none."""
        self.context = context
        self.keys = keys
        self.on = pair is not None or keys.sealer is not None
        self.verifier = Verifier(
            lambda key_id: (pair and pair(key_id)) or keys.secret_of(key_id), region=context.region
        )
        self.log = structlog.get_logger("storaged")

    async def answer(self, scope: Scope, request: Request) -> Response:
        if not self.on:
            raise S3Error("AccessDenied", DISABLED)
        client, cached = await self.keys.load(scope)
        try:
            auth = self.verifier.verify(scope)
        except S3Error as exc:
            if not cached or exc.code not in KEY_MISSES:
                raise
            client, _ = await self.keys.load(scope, fresh=True)  # made or rotated at the gateway since it was read
            auth = self.verifier.verify(scope)
        handler, bucket, key = _operation(scope, request)
        if client is not None:
            refusal = self.keys.refusal(scope, client, bucket)
            if refusal is not None:
                raise refusal
        return await handler(self.context, S3Request(request, auth, bucket, key, client))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        rid = request_id()
        head = scope["method"] == "HEAD"
        try:
            response = await self.answer(scope, request)
        except S3Error as exc:
            response = s3_error_response(exc, request=rid, head=head)
        except LakehouseError as exc:
            response = s3_error_response(S3Error.from_native(exc, resource=scope["path"]), request=rid, head=head)
        except ClientDisconnect:
            response = Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception:
            self.log.exception("S3 request failed", path=scope["path"], method=scope["method"])
            fault = S3Error("InternalError", "We encountered an internal error. Please try again.")
            response = s3_error_response(fault, request=rid, head=head)
        response.headers["x-amz-request-id"] = rid
        await response(scope, receive, send)


class S3Door:
    """Front middleware: S3 requests (shared/s3/requests.py) go to the S3 API, everything else on to `app`."""

    def __init__(self, app: ASGIApp, *, s3: ASGIApp) -> None:
        self.app = app
        self.s3 = s3

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_s3_request(scope):
            await self.s3(scope, receive, send)
        else:
            await self.app(scope, receive, send)
