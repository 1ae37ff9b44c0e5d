"""The forwarding path: pure ASGI, one family lookup per request, bytes streamed both ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.headers import strip_hop_by_hop, upstream_request_headers
from shared.errors import STATUS_BY_CODE, send_error
from shared.keys.grant import GRANT_SCOPE
from shared.registry import FAMILY_PREFIX
from shared.s3.errors import S3Error
from shared.s3.requests import is_s3_request, send_s3_error
from shared.server.splice import SPLICE, SourceFailed
from shared.telemetry.metrics import FAMILY_KEY, UPSTREAM_ERROR_KEY
from shared.upstream import (
    Headers,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    chunked,
)

# How long a request may wait on its upstream before a task starts watching for the client to go away.
LAZY_WATCH_SECS = 0.05
# A response with at least this much body still to come is spliced (when the server can), not relayed.
SPLICE_MIN_BYTES = 1 << 20
# A streamed request body up to this size is read whole first, so that it can be sent again on a fresh
# connection when a pooled one turns out stale; a bigger one streams and is never replayed.
REPLAY_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # "chat" for /v1/chat, "models" for the exact path /v1/models
    service: str
    pool: UpstreamPool
    header_timeout_secs: float


class ClientDisconnected(Exception):
    pass


def has_dot_dot_segment(raw_path: bytes) -> bool:
    """True for a `..` segment as any upstream might see it: raw or percent-encoded (also behind an encoded
    slash), with a backslash taken as a separator (as Windows and some frameworks do), with `;` parameters
    (`..;x`, as servlet containers strip them)."""
    path = unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path
    if b".." not in path:
        return False
    return any(segment.partition(b";")[0] == b".." for segment in path.replace(b"\\", b"/").split(b"/"))


async def _request_body(first: bytes, receive: Receive, on_end: Callable[[], None]) -> AsyncIterator[bytes]:
    yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            on_end()
            return


async def _whole_body(first: bytes, receive: Receive) -> bytes | None:
    """The rest of a small body, joined to its first part; None if the client went away meanwhile."""
    parts = [first]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # the server's parser has already checked it is a number
    return None


# /v1/<segment> paths the gateway answers itself.
GATEWAY_SEGMENTS = frozenset({"health", "keys"})


class FamilyProxy:
    """Forwards /v1/<family>/... and each exact path to its upstream, and S3 requests (signed, outside /v1/) to `s3`;
    every other path goes on to `app`.

    `families` is keyed by the segment after /v1/ ("chat"), `exact` by the whole path ("/v1/models"): one dict
    lookup each, so the hot path never scans a list of routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        families: Mapping[str, Family],
        exact: Mapping[str, Family],
        s3: Family | None = None,
        admit_signed: Callable[[Scope], S3Error | None] | None = None,
    ) -> None:
        """`admit_signed` checks an S3 request signed with a client key (shared/keys/gate.py) before it goes on."""
        self.app = app
        self.s3 = s3
        self.admit_signed = admit_signed
        self.families = dict(families)
        self.exact = dict(exact)
        self.known = ", ".join([*(FAMILY_PREFIX + name for name in self.families), *self.exact])
        self.log = structlog.get_logger("gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith(FAMILY_PREFIX):
            if self.s3 is not None and is_s3_request(scope):
                # The signature covers the path as the client sent it: it goes on unchanged (the '..' rule is
                # the upstream's, whose keys refuse such segments in S3's own error shape).
                scope[FAMILY_KEY] = self.s3.name
                refusal = self.admit_signed(scope) if self.admit_signed is not None else None
                if refusal is not None:
                    await send_s3_error(
                        send, refusal.status, refusal.code, refusal.message, resource=path, headers=refusal.headers
                    )
                    return
                await self.forward(self.s3, scope.get("raw_path") or path.encode(), scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        family = self.exact.get(path)
        if family is None:
            name = path[len(FAMILY_PREFIX) :].partition("/")[0]
            family = self.families.get(name)
            if family is None:
                if name in GATEWAY_SEGMENTS:
                    await self.app(scope, receive, send)
                else:
                    await send_error(send, "not_found", f"no gateway family for {path}; known: {self.known}")
                return
        scope[FAMILY_KEY] = family.name
        raw_path: bytes = scope.get("raw_path") or path.encode()
        if has_dot_dot_segment(raw_path):
            await send_error(send, "invalid_request", "path contains a '..' segment")
            return
        await self.forward(family, raw_path, scope, receive, send)

    async def forward(self, family: Family, raw_path: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope["query_string"]
        target = raw_path + b"?" + query if query else raw_path
        client = scope.get("client")
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        headers: Headers = scope["headers"]
        first_chunk: bytes = first.get("body", b"")
        body: bytes | AsyncIterator[bytes] = first_chunk
        stream_body: bool = first.get("more_body", False)
        length = _content_length(headers)
        if stream_body and length is not None and length <= REPLAY_MAX_BYTES:
            whole = await _whole_body(first_chunk, receive)
            if whole is None:
                return
            body, stream_body = whole, False
        # A body of unknown length (it came chunked) goes upstream chunked; one with a length keeps its length.
        rechunk = stream_body and length is None
        watch = DisconnectWatch(receive)
        if stream_body:
            # Once the body is all sent, the client going away must cancel the wait for the upstream's answer.
            raw = _request_body(first_chunk, receive, watch.start)
            body = chunked(raw) if rechunk else raw
        elif first_chunk and length is None:
            headers = [*headers, (b"content-length", str(len(first_chunk)).encode())]
        upstream_headers = upstream_request_headers(
            headers,
            host=family.pool.host_header,
            peer=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            chunked=rechunk,
            grant=scope.get(GRANT_SCOPE),
        )
        if not stream_body:
            # Most upstreams answer within milliseconds; only a slow one is worth a watcher task.
            watch.start_later(LAZY_WATCH_SECS)
        try:
            await self._exchange(family, target, upstream_headers, body, scope, watch, send)
        except asyncio.CancelledError:
            if not watch.fired:
                raise
            watch.task.uncancel()
            self.log.info("client went away; upstream request cancelled", family=family.name)
        except ClientDisconnected:
            self.log.info("client went away while sending the body", family=family.name)
        finally:
            watch.stop()

    async def _exchange(
        self,
        family: Family,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        scope: Scope,
        watch: DisconnectWatch,
        send: Send,
    ) -> None:
        where = f"{family.service} (/v1/{family.name})"
        try:
            response = await family.pool.request(
                scope["method"].encode(), target, headers, body, header_timeout_secs=family.header_timeout_secs
            )
        except UpstreamError as exc:
            scope[UPSTREAM_ERROR_KEY] = exc.code.removeprefix("upstream_")
            if family is self.s3:
                status = STATUS_BY_CODE[exc.code]
                await send_s3_error(send, status, "ServiceUnavailable", f"{family.service}: {exc}")
            else:
                await send_error(send, exc.code, f"{where}: {exc}")
            return
        try:
            data = await response.read()
            await send(_start(response))
            if response.complete:
                # Common case: the whole body is already here, so it goes out as one message, and no watcher task
                # is started and cancelled for it (~5% of the gateway's CPU for a small answer).
                await send({"type": "http.response.body", "body": data or b"", "more_body": False})
                return
            # A streamed body: from here the client going away must stop the relay (and the upstream call with it).
            # Before its first bytes, the lazy watch armed in `forward` covers a slow upstream.
            watch.start()
            splice = _splicer(scope)
            while data is not None:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                rest = response.detach_rest(SPLICE_MIN_BYTES) if splice is not None else None
                if splice is not None and rest is not None:
                    # A large body: the kernel moves the rest from socket to socket (shared/splice.py).
                    socket, left = rest
                    response.reattach(await splice(socket, left), left)
                    break
                data = await response.read()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (UpstreamError, SourceFailed) as exc:
            # Headers are gone already: ending without the final body message makes the server drop the
            # connection, so the client sees a truncated response, never a falsely complete one.
            scope[UPSTREAM_ERROR_KEY] = "mid_body"
            self.log.warning("upstream failed mid-response", family=family.name, error=str(exc))
        finally:
            response.release()


class DisconnectWatch:
    """Cancels the request's task when the client disconnects, so the upstream call stops with it."""

    __slots__ = ("_timer", "_watcher", "fired", "receive", "task")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.fired = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start_later(self, seconds: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(seconds, self.start)

    def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.fired = True
            self.task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


Splice = Callable[[int, int], Awaitable[int]]


def _splicer(scope: Scope) -> Splice | None:
    extension: dict[str, Splice] | None = scope.get("extensions", {}).get(SPLICE)
    return extension["splice"] if extension is not None else None


def _start(response: UpstreamResponse) -> Message:
    return {
        "type": "http.response.start",
        "status": response.status,
        "headers": strip_hop_by_hop(response.headers),
    }
