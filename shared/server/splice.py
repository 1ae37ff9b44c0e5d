"""A response body moved from another socket or a file to the client's socket by the kernel (splice(2) through a
pipe), so its bytes never pass through Python: the server's half of the gateway's large-body relay and of
storaged's object GETs.

Relaying a large body the ordinary way costs, per byte, a copy out of the upstream socket, a copy into the client
socket and the Python work of every read in between; on two cores shared with storaged and the client that is
what bounds a large download. splice moves the pages instead.

The server offers it as the scope extension `lakehouse.splice` (LimitedHttpProtocol does; an app checks for it and
streams otherwise). After `http.response.start` of a response with a Content-Length:

    taken = await scope["extensions"]["lakehouse.splice"]["splice"](fd, count)

moves `count` body bytes from the nonblocking socket `fd` and returns how many it took from `fd` (fewer only when
the client went away; the response is then dropped, as any send to a gone client is). With `offset=n`, `fd` is a
regular file read from byte n (its position untouched): storaged sends an object's file so, without reading it.
If `fd` ends or fails first it raises SourceFailed, and the client's connection is closed: a truncated body, never
a falsely whole one.
The app still sends the final `http.response.body`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import weakref
from collections.abc import Callable
from functools import partial

from anyio import to_thread
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

SPLICE = "lakehouse.splice"

# The pipe between the two sockets (Linux's default is 64 KiB; 1 MiB is the unprivileged maximum).
PIPE_BYTES = 1 << 20
# Bytes moved without once waiting on a socket before the event loop is given a turn.
YIELD_EVERY_BYTES = 4 << 20
# How often the response head is checked for having left the transport's buffer (it nearly always has at once).
FLUSH_POLL_SECS = 0.001
FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


class SourceFailed(OSError):
    """The source socket ended or failed before the promised bytes were all taken from it."""


class ClientGone(OSError):
    pass


class Splicer:
    """The extension's `splice` for one request. It holds its cycle weakly: the cycle's scope holds it, and a
    strong reference back would make every request a reference cycle, left for the garbage collector."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = weakref.ref(cycle)

    async def __call__(self, source: int, count: int, offset: int | None = None) -> int:
        cycle = self._cycle()
        if cycle is None:
            raise RuntimeError("splice called after its request ended")
        return await splice_body(cycle, source, count, offset)


async def splice_body(cycle: RequestResponseCycle, source: int, count: int, offset: int | None = None) -> int:
    """Move `count` bytes of the response body from `source` to `cycle`'s client; see the module docstring."""
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding is not False:
        raise RuntimeError("splice needs a started response with a Content-Length")
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.disconnected:
        return 0
    transport = cycle.transport
    # What the transport still buffers (the response head) must reach the socket before the body does.
    while transport.get_write_buffer_size():
        if transport.is_closing():
            cycle.disconnected = True
            return 0
        await asyncio.sleep(FLUSH_POLL_SECS)
    relay = Relay(source, transport.get_extra_info("socket").fileno(), offset)
    try:
        await relay.run(count)
    except ClientGone:
        cycle.disconnected = True
        transport.close()
        return relay.taken
    except SourceFailed:
        # Dropped, so the client sees its body incomplete; and done with, so the app's later sends are no-ops.
        cycle.disconnected = True
        transport.close()
        raise
    finally:
        relay.close()
    cycle.expected_content_length -= count
    return relay.taken


class Relay:
    """source socket or file → pipe → target socket. Own duplicates of both descriptors: the event loop will not watch a
    descriptor its transport owns, and closing them here never closes the transports'."""

    def __init__(self, source: int, target: int, offset: int | None) -> None:
        self.offset = offset  # a file's read from here on; None: a socket's read as its bytes come
        self.source = os.dup(source)
        self.target = os.dup(target)
        self.pipe_out, self.pipe_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self.pipe_bytes = fcntl.fcntl(self.pipe_in, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
            self.pipe_bytes = fcntl.fcntl(self.pipe_in, fcntl.F_GETPIPE_SZ)
        self.taken = 0

    async def run(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        sent = in_pipe = unyielded = 0
        while sent < count:
            if not in_pipe:
                try:
                    moved = await self._fill(loop, min(count - self.taken, self.pipe_bytes))
                except OSError as exc:
                    raise SourceFailed(exc.errno, f"reading the body failed: {exc.strerror}") from exc
                if not moved:
                    raise SourceFailed(f"the source ended with {count - self.taken} body bytes still to come")
                self.taken += moved
                in_pipe = moved
            try:
                moved = os.splice(self.pipe_out, self.target, in_pipe, flags=FLAGS)
            except BlockingIOError:
                await _ready(loop.add_writer, loop.remove_writer, self.target)
                unyielded = 0
                continue
            except OSError as exc:
                raise ClientGone(exc.errno, exc.strerror) from exc
            in_pipe -= moved
            sent += moved
            unyielded += moved
            if unyielded >= YIELD_EVERY_BYTES:
                unyielded = 0
                await asyncio.sleep(0)

    async def _fill(self, loop: asyncio.AbstractEventLoop, size: int) -> int:
        """Up to `size` bytes from the source into the (empty) pipe; 0 when the source has ended."""
        if self.offset is not None:
            # A file: a cold page cache means disk reads, so the call runs on a worker thread.
            at = self.offset + self.taken
            return await to_thread.run_sync(partial(os.splice, self.source, self.pipe_in, size, at, flags=FLAGS))
        while True:
            try:
                return os.splice(self.source, self.pipe_in, size, flags=FLAGS)
            except BlockingIOError:
                await _ready(loop.add_reader, loop.remove_reader, self.source)

    def close(self) -> None:
        for fd in (self.source, self.target, self.pipe_out, self.pipe_in):
            os.close(fd)


async def _ready(
    watch: Callable[[int, Callable[[asyncio.Future[None]], None], asyncio.Future[None]], object],
    unwatch: Callable[[int], object],
    fd: int,
) -> None:
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    watch(fd, _set_once, ready)
    try:
        await ready
    finally:
        unwatch(fd)


def _set_once(future: asyncio.Future[None]) -> None:
    # The loop may find the descriptor ready once more before the waiting task resumes.
    if not future.done():
        future.set_result(None)
