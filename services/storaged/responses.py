"""The response that streams an object from its backend handle (and closes the handle whatever happens)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from email.utils import format_datetime

import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.storaged.backends.base import ObjectHandle, StoredObject
from services.storaged.ranges import Span
from shared.server.splice import SPLICE, SourceFailed

META_HEADER_PREFIX = "x-amz-meta-"  # S3's name for user metadata, which both APIs answer with


def object_headers(info: StoredObject) -> dict[str, str]:
    """The validators, type and user metadata of an object, as GET, HEAD and 304 give them."""
    headers = {
        "etag": info.etag,
        "last-modified": format_datetime(info.last_modified, usegmt=True),
        "content-type": info.content_type,
        "accept-ranges": "bytes",
    }
    for name, value in info.metadata.items():
        headers[META_HEADER_PREFIX + name] = value
    return headers


def not_modified(info: StoredObject) -> Response:
    """304 for a GET whose If-None-Match (or If-Modified-Since) matched: the validators, no type, no body."""
    headers = object_headers(info)
    del headers["content-type"]
    return Response(status_code=304, headers=headers)


class ObjectResponse(Response):
    """200 with the whole object or 206 with `span`; HEAD gets the same headers and no body."""

    def __init__(self, handle: ObjectHandle, span: Span | None, *, sent: Callable[[int], None]) -> None:
        info = handle.info
        headers = object_headers(info)
        headers["content-length"] = str(span.length if span else info.size)
        if span is not None:
            headers["content-range"] = f"bytes {span.start}-{span.end}/{info.size}"
        super().__init__(status_code=206 if span else 200, headers=headers)
        self.handle = handle
        self.span = span
        self.sent = sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            region = self.handle.file_region(self.span)
            splice = scope.get("extensions", {}).get(SPLICE)
            if scope["method"] == "HEAD":
                pass
            elif region is not None and region.count and splice is not None:
                # The server moves the file's pages to the socket (shared/splice.py): no byte passes through Python.
                try:
                    self.sent(await splice["splice"](region.fd, region.count, region.offset))
                except SourceFailed as exc:
                    # The file was cut short under storaged (by hand: storaged itself only ever renames a
                    # whole file into place); the client's connection is closed, its body visibly incomplete.
                    structlog.get_logger("storaged").warning("object file shrank while sent", error=str(exc))
                    return
            else:
                async with aclosing(self.handle.stream(self.span)) as chunks:
                    async for chunk in chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        self.sent(len(chunk))
            await send({"type": "http.response.body", "body": b""})
        finally:
            await self.handle.aclose()
