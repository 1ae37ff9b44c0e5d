"""Cutting an upstream stream into JSON events: NDJSON lines (Ollama) or Server-Sent Events `data:` lines (OpenAI)."""

from __future__ import annotations

from services.chatd.types import Framing

# An event larger than this is not a token stream any more; the upstream is treated as broken.
MAX_EVENT_BYTES = 4 << 20


class EventSplitter:
    """Feed body bytes as they arrive; get back the complete events' JSON payloads. `done` turns true at SSE's
    `data: [DONE]` (NDJSON streams end with a `"done": true` event, which the translator reads)."""

    __slots__ = ("_buffer", "_sse", "done")

    def __init__(self, framing: Framing) -> None:
        self._sse = framing == "sse"
        self._buffer = b""
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise ValueError(f"a stream event is larger than {MAX_EVENT_BYTES} bytes")
        if not self._sse:
            return [line for line in lines if line.strip()]
        events = []
        for line in lines:
            # SSE: only data lines carry payloads; comments (":"), event:, id:, retry: and blank separators do not.
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    self.done = True
                elif payload:
                    events.append(payload)
        return events

    def tail(self) -> list[bytes]:
        """What was left without a final newline when the body ended."""
        rest, self._buffer = self._buffer, b""
        return self.feed(rest + b"\n") if rest.strip() else []
