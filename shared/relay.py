"""`lakehouse up`'s output: every child line passes through here and leaves with its service's name on it.

On a terminal a line reads `chatd     | ...`, the name padded and coloured (docker compose, foreman); off a terminal a
JSON log line stays one JSON object with a "service" field added (log shippers still parse it), and any other line
gets the plain prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO

import orjson

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

    def follow(self, name: str, stream: IO[bytes]) -> None:
        """Copy `stream` line by line until it closes, in a thread of its own."""

        def pump() -> None:
            with stream:
                for raw in stream:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    with self.lock:
                        try:
                            self.write(self.format(name, line))
                        except (OSError, ValueError):
                            # Our stdout is gone (`up | head`, a closed terminal): keep draining the pipe, or
                            # the child would block on its next log line and stop serving.
                            continue

        thread = threading.Thread(target=pump, name=f"relay-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait for the children's last lines (they close their pipes when they exit)."""
        for thread in self.threads:
            thread.join(timeout)
        self.threads = [t for t in self.threads if t.is_alive()]
