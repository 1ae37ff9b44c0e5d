"""The typed async client other services use to call storaged (catalogd, ingestd, queryd, vectord).

    async with StoragedClient(config.catalogd.storaged_url, token=config.auth.token.get_secret_value()) as storage:
        put = await storage.put("a/b.parquet", chunks(), content_type="application/vnd.apache.parquet")
        async with storage.get("a/b.parquet") as obj:
            async for chunk in obj.aiter_bytes():
                ...

The services that own a reserved prefix (`RESERVED_PREFIXES` in schemas.py: catalogd, vectord) pass
`internal=True`: the client then speaks to storaged's internal route, the only one that reaches those keys.

Every error answer raises `StorageError` (a `RemoteError`) carrying the stack's code, the status and the message;
an unreachable storaged is `upstream_unavailable` (502), one that does not answer in time `upstream_timeout` (504).
Pass `transport=httpx.ASGITransport(app)` to talk to an in-process storaged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from services.storaged.schemas import (
    DEFAULT_LIST_LIMIT,
    INTERNAL_OBJECTS,
    OBJECTS,
    ObjectInfo,
    ObjectList,
    ObjectMeta,
    PutResult,
)
from shared.upstream.client import RemoteError, ServiceClient, error_from_response, error_from_transport

SAFE_RETRY_METHODS = frozenset({"GET", "HEAD", "DELETE"})
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=5.0)


class StorageError(RemoteError):
    """storaged answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


def object_path(key: str, base: str = OBJECTS) -> str:
    """The request path of `key` under `base`: each segment percent-encoded once (storaged decodes once).

    Dot segments are encoded too, so that no HTTP library folds `a/../b` into `b`; storaged then refuses them.
    """
    segments = [quote(s, safe="") if s not in (".", "..") else s.replace(".", "%2E") for s in key.split("/")]
    return f"{base}/{'/'.join(segments)}"


def meta_from_headers(key: str, headers: httpx.Headers) -> ObjectMeta:
    size = int(headers.get("content-length", "0"))
    content_range = headers.get("content-range")
    if content_range and "/" in content_range:
        total = content_range.rpartition("/")[2]
        if total.isdigit():
            size = int(total)
    return ObjectMeta(
        key=key,
        size=size,
        etag=headers.get("etag", ""),
        last_modified=parsedate_to_datetime(headers["last-modified"]),
        content_type=headers.get("content-type", "application/octet-stream"),
    )


@dataclass
class ObjectStream:
    """An object being read: its metadata, the status (200 whole, 206 a range) and the body as it arrives."""

    meta: ObjectMeta
    status: int
    content_range: str | None
    response: httpx.Response

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(chunk_size)


class StoragedClient(ServiceClient):
    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        internal: bool = False,
    ) -> None:
        # Objects can be large: a longer default read timeout than the other clients'.
        super().__init__(base_url, token=token, transport=transport, timeout=timeout)
        self.objects_path = INTERNAL_OBJECTS if internal else OBJECTS

    def _path(self, key: str) -> str:
        return object_path(key, self.objects_path)

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            try:
                response = await self._http.send(request, stream=stream)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # A reused connection closed under us: a read or delete can safely go again, once.
                if request.method not in SAFE_RETRY_METHODS:
                    raise
                response = await self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url, "storaged", StorageError) from None
        if response.is_success or response.status_code == 304:
            return response
        try:
            await response.aread()
        finally:
            await response.aclose()
        raise error_from_response(response, "storaged", StorageError)

    async def put(
        self,
        key: str,
        body: bytes | AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        size: int | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> PutResult:
        """Store `body` (bytes, or streamed from an async iterator) under `key`.

        `if_none_match=True` sends `If-None-Match: *` (create only); `if_match` sends the ETag the current object
        must have. Either failing raises StorageError with code precondition_failed. `size`, when known, is sent as
        Content-Length so an oversized upload is refused before it is sent.
        """
        headers = {"content-type": content_type}
        if size is not None:
            headers["content-length"] = str(size)
        if if_none_match:
            headers["if-none-match"] = "*"
        if if_match is not None:
            headers["if-match"] = if_match
        request = self._http.build_request("PUT", self._path(key), content=body, headers=headers)
        response = await self._send(request)
        return PutResult.model_validate_json(response.content)

    @asynccontextmanager
    async def get(self, key: str, *, range: str | None = None) -> AsyncIterator[ObjectStream]:
        """Stream `key`; `range` is a Range header value, e.g. "bytes=0-99", "bytes=100-", "bytes=-10"."""
        headers = {"range": range} if range else {}
        response = await self._send(self._http.build_request("GET", self._path(key), headers=headers), stream=True)
        try:
            meta = meta_from_headers(key, response.headers)
            yield ObjectStream(meta, response.status_code, response.headers.get("content-range"), response)
        finally:
            await response.aclose()

    async def get_bytes(self, key: str, *, range: str | None = None) -> bytes:
        """The whole object (or range) in memory: for objects known to be small (manifests, index snapshots)."""
        response = await self._send(
            self._http.build_request("GET", self._path(key), headers={"range": range} if range else {})
        )
        return response.content

    async def get_small(self, key: str) -> tuple[bytes, ObjectMeta]:
        """A small object whole, with its metadata (the ETag a conditional PUT of its next state needs)."""
        response = await self._send(self._http.build_request("GET", self._path(key)))
        return response.content, meta_from_headers(key, response.headers)

    async def head(self, key: str) -> ObjectMeta:
        """The object's metadata; StorageError not_found when it does not exist."""
        response = await self._send(self._http.build_request("HEAD", self._path(key)))
        return meta_from_headers(key, response.headers)

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except StorageError as exc:
            if exc.code == "not_found":
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        await self._send(self._http.build_request("DELETE", self._path(key)))

    async def list_objects(
        self, prefix: str = "", *, limit: int = DEFAULT_LIST_LIMIT, after: str | None = None
    ) -> ObjectList:
        """One page of keys starting with `prefix`, sorted; pass `.next` as `after` for the following page."""
        params: dict[str, str | int] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        response = await self._send(self._http.build_request("GET", self.objects_path, params=params))
        return ObjectList.model_validate_json(response.content)

    async def iter_objects(self, prefix: str = "", *, page_size: int = DEFAULT_LIST_LIMIT) -> AsyncIterator[ObjectInfo]:
        """Every object under `prefix`, page after page."""
        after: str | None = None
        while True:
            page = await self.list_objects(prefix, limit=page_size, after=after)
            for info in page.objects:
                yield info
            if page.next is None:
                return
            after = page.next
