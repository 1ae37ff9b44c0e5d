"""`lakehouse up`'s line relay: prefixes, JSON lines tagged with their service, and no stuck child."""

from __future__ import annotations

import json
import os
import threading
import time

from shared.stack.relay import Relay


def test_terminal_lines_are_padded_and_coloured() -> None:
    relay = Relay(["gateway", "chatd"], print, tty=True)
    assert relay.format("chatd", "hello") == "\x1b[33mchatd   |\x1b[0m hello"


def test_off_a_terminal_json_lines_stay_json_with_a_service_field() -> None:
    relay = Relay(["gateway", "chatd"], print, tty=False)
    tagged = json.loads(relay.format("chatd", '{"event": "Started", "level": "info"}'))
    assert tagged == {"event": "Started", "level": "info", "service": "chatd"}
    # A line that says which service wrote it keeps its own word.
    assert json.loads(relay.format("gateway", '{"event": "x", "service": "other"}'))["service"] == "other"
    assert relay.format("chatd", "Traceback (most recent call last):") == "chatd   | Traceback (most recent call last):"
    assert relay.format("chatd", "{not json") == "chatd   | {not json"


def test_a_child_never_blocks_when_our_stdout_is_gone() -> None:
    def broken(line: str) -> None:
        raise BrokenPipeError("stdout closed")

    relay = Relay(["chatd"], broken, tty=False)
    read_end, write_end = os.pipe()
    relay.follow("chatd", os.fdopen(read_end, "rb"))
    done = threading.Event()

    def child() -> None:
        with os.fdopen(write_end, "wb") as out:
            for i in range(20_000):  # far more than a pipe buffer holds
                out.write(b'{"event": "line %d"}\n' % i)
        done.set()

    threading.Thread(target=child, daemon=True).start()
    assert done.wait(30), "the child blocked writing its log"
    relay.drain()
    assert relay.threads == []


def test_lines_arrive_whole_and_in_order_even_when_written_in_pieces() -> None:
    written: list[str] = []
    relay = Relay(["chatd"], written.append, tty=False)
    read_end, write_end = os.pipe()
    relay.follow("chatd", os.fdopen(read_end, "rb"))
    with os.fdopen(write_end, "wb", buffering=0) as out:
        out.write(b"one\ntw")
        time.sleep(0.05)  # the pump has read the first piece by now (no timing is asserted)
        out.write(b"o\nthree\n\nlast without newline")
    relay.drain()
    assert relay.threads == []
    lines = "\n".join(written).split("\n")
    assert lines == [f"chatd | {text}" for text in ("one", "two", "three", "", "last without newline")]
