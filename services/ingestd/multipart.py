"""The one file part of a multipart/form-data body, streamed: its name and type first, then its bytes as they arrive.

A tiny parser of our own because the common ones (Starlette's `request.form()`) read the whole body before the
handler sees any of it; ingest parses while receiving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import Message

from shared.errors import LakehouseError

MAX_HEADERS = 16 << 10


def boundary_of(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise LakehouseError("invalid_request", "multipart/form-data without a valid boundary parameter")
    return boundary


def _bad(message: str) -> LakehouseError:
    return LakehouseError("invalid_request", f"multipart body: {message}")


class FilePart:
    """`await open()` reads up to the part's headers; then `chunks()` yields its data and checks the closing line."""

    def __init__(self, source: AsyncIterator[bytes], boundary: str) -> None:
        self._source = source
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = b""
        self.filename: str | None = None
        self.content_type = ""
        self.field_name = ""

    async def _more(self) -> bool:
        try:
            chunk = await anext(self._source)
        except StopAsyncIteration:
            return False
        self._buffer += chunk
        return True

    async def open(self) -> None:
        opening = self._delimiter[2:] + b"\r\n"
        # The preamble before the first boundary is ignored, as RFC 2046 says.
        while (start := self._buffer.find(opening)) < 0:
            if len(self._buffer) > MAX_HEADERS or not await self._more():
                raise _bad("no part found (is the body really multipart/form-data with this boundary?)")
        self._buffer = self._buffer[start + len(opening) :]
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEADERS or not await self._more():
                raise _bad("the part's headers do not end")
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        headers = Message()
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            header, sep, value = line.partition(":")
            if sep:
                headers[header.strip()] = value.strip()
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        filename = disposition.get_param("filename", header="content-disposition")
        field_name = disposition.get_param("name", header="content-disposition")
        self.filename = filename if isinstance(filename, str) else None
        self.field_name = field_name if isinstance(field_name, str) else ""
        self.content_type = headers.get("content-type", "")

    async def chunks(self) -> AsyncIterator[bytes]:
        keep = len(self._delimiter) - 1
        while True:
            end = self._buffer.find(self._delimiter)
            if end >= 0:
                if end:
                    yield self._buffer[:end]
                self._buffer = self._buffer[end + len(self._delimiter) :]
                break
            if len(self._buffer) > keep:
                # Keep a tail that could be the start of the delimiter split across two chunks.
                yield self._buffer[:-keep]
                self._buffer = self._buffer[-keep:]
            if not await self._more():
                raise _bad("the body ended inside the file part (no closing boundary)")
        while len(self._buffer) < 2 and await self._more():
            pass
        if not self._buffer.startswith(b"--"):
            raise _bad("expected exactly one part, the file (e.g. curl -F file=@data.csv)")
        # The epilogue after the closing boundary is drained and ignored.
        while await self._more():
            self._buffer = b""
