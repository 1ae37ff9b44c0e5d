"""`lakehouse up`'s output: every child line passes through here and leaves with its service's name on it.

On a terminal a line reads `chatd     | ...`, the name padded and coloured (docker compose, foreman); off a terminal a
JSON log line stays one JSON object with a "service" field added (log shippers still parse it), and any other line
gets the plain prefix.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import IO

import orjson

# After a read that found output, a pump waits this long before reading again, so the lines a child writes meanwhile
# are relayed together: a busy child's log lines cost this process one wake-up per batch, not one per line (line by
# line, relaying a request's two access lines took ~0.15 ms of CPU, on a 2-core box that the request itself needs;
# batched, ~0.06 ms). An idle child costs nothing (its pump blocks in read); a line reaches the screen at most this
# late.
LINGER_SECS = 0.02
# A read at least this large means the child writes fast: read again at once, so its pipe never fills while we wait.
BUSY_READ_BYTES = 16 << 10
READ_BYTES = 64 << 10

# Bright ANSI colours, cycled over the services in start order.
COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94")
RESET = "\x1b[0m"


class Relay:
    def __init__(self, names: list[str], write: Callable[[str], None], *, tty: bool) -> None:
        self.width = max(len(name) for name in names)
        self.colour = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
        self.write = write
        self.tty = tty
        self.lock = threading.Lock()  # one whole line at a time, whichever child wrote it
        self.threads: list[threading.Thread] = []

    def say(self, line: str) -> None:
        """The supervisor's own lines, never cut into a child's."""
        with self.lock:
            self.write(line)

    def format(self, name: str, line: str) -> str:
        if self.tty:
            return f"\x1b[{self.colour[name]}m{name:<{self.width}} |{RESET} {line}"
        if line.startswith("{"):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                event.setdefault("service", name)
                return orjson.dumps(event).decode()
        return f"{name:<{self.width}} | {line}"

    def relay(self, name: str, lines: list[bytes]) -> None:
        """Write a child's whole lines, in order and in one piece (never cut into by another child's)."""
        text = "\n".join(self.format(name, raw.decode(errors="replace").rstrip("\r")) for raw in lines)
        # Our stdout may be gone (`up | head`, a closed terminal): the pump keeps draining the pipe regardless, or
        # the child would block on its next log line and stop serving.
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.write(text)

    def follow(self, name: str, stream: IO[bytes]) -> None:
        """Copy `stream`'s lines until it closes, a batch at a time, in a thread of its own."""

        def pump() -> None:
            with stream:
                fd = stream.fileno()
                pending = b""
                while chunk := os.read(fd, READ_BYTES):
                    *lines, pending = (pending + chunk).split(b"\n")
                    if lines:
                        self.relay(name, lines)
                    if len(chunk) < BUSY_READ_BYTES:
                        time.sleep(LINGER_SECS)
                if pending:  # a last line without its newline
                    self.relay(name, [pending])

        thread = threading.Thread(target=pump, name=f"relay-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait for the children's last lines (they close their pipes when they exit)."""
        for thread in self.threads:
            thread.join(timeout)
        self.threads = [t for t in self.threads if t.is_alive()]
