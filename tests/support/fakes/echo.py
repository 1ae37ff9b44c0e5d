"""A raw ASGI upstream for gateway tests: echoes what arrived, and misbehaves on request."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

GZIPPED = gzip.compress(b"squeezed " * 100)


@dataclass
class EchoUpstream:
    """`release_sse` lets an SSE stream send its last event; `active`/`disconnected` count /hang and /trickle requests;
    `received` is the raw path of every request that reached it, whatever it asked for."""

    name: str = "echo"
    release_sse: asyncio.Event = field(default_factory=asyncio.Event)
    active: int = 0
    disconnected: int = 0
    delay_secs: float = 0.0
    received: list[str] = field(default_factory=list)

    @property
    def forwarded(self) -> list[str]:
        """The /v1/... paths received: what a gateway forwarded. A stray /health probe is left out: on a shared
        machine another test's supervisor may poll a port it was given that this upstream now holds."""
        return [path for path in self.received if path.startswith("/v1/")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.received.append(scope["raw_path"].decode())
        last = scope["path"].rsplit("/", 1)[-1]
        handler = getattr(self, f"_{last}", self._echo)
        await handler(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += bytes(message.get("body", b""))
            if not message.get("more_body", False):
                return body

    async def _echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        if self.delay_secs:
            await asyncio.sleep(self.delay_secs)
        seen: dict[str, Any] = {
            "upstream": self.name,
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode(errors="replace"),
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        payload = json.dumps(seen).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _sse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._read_body(receive)
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        await self.release_sse.wait()
        await send({"type": "http.response.body", "body": b"data: last\n\n", "more_body": False})

    async def _cookies(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def _hop(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"connection", b"x-upstream-private"),
            (b"x-upstream-private", b"secret-ish"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-authenticate", b"Basic"),
            (b"trailer", b"x-checksum"),
            (b"upgrade", b"h2c"),
            (b"x-end-to-end", b"kept"),
            (b"content-length", b"2"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def _gzip(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-encoding", b"gzip"), (b"content-length", str(len(GZIPPED)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": GZIPPED})

    async def _broken(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"x" * 100, "more_body": True})
        raise RuntimeError("upstream dies mid-body (on purpose)")

    async def _hang(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.active += 1
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected += 1
        finally:
            self.active -= 1

    async def _trickle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Headers and a first chunk, then nothing until the client goes away (counted as /hang is)."""
        await self._read_body(receive)
        self.active += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected += 1
        finally:
            self.active -= 1

    async def _status(self, scope: Scope, receive: Receive, send: Send) -> None:
        code = int(dict(scope["headers"]).get(b"x-want-status", b"200"))
        await send({"type": "http.response.start", "status": code, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
