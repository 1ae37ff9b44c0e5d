"""The gateway's master process: binds once, forks workers that accept on the shared socket, respawns a worker
that dies (as nginx and gunicorn do) and stops them all together."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType

import structlog

from shared.server.restart_policy import CrashWindow, describe_exit

RunWorker = Callable[[list[socket.socket]], bool]


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a worker is forked and recorded, so a stop never misses the newest one."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _fork_worker(run: RunWorker, sock: socket.socket, before: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # A worker starts with the default dispositions (uvicorn installs its own), not the master's handler.
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            before()
            code = 0 if run([sock]) else 1
        finally:
            # Never return into the master's loop from a worker, whatever happened.
            os._exit(code)
    return pid


def supervise_workers(
    service: str, sock: socket.socket, workers: int, run: RunWorker, *, before: Callable[[], None]
) -> bool:
    """Run `workers` forks of `run` on `sock` until SIGINT/SIGTERM; respawn the ones that die.

    False when the master gave up (too many crashes in the window), True after a clean stop.
    """
    log = structlog.get_logger("runner")
    slots: dict[int, int] = {}  # pid -> worker number, stable across respawns so the log can follow one slot
    crashes = CrashWindow()
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in slots:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(workers):
            with _stop_signals_held():
                slots[_fork_worker(run, sock, before)] = number
        gave_up = False
        while slots:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            number = slots.pop(pid, -1)
            if number < 0 or stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            exit_signal = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else None
            count = crashes.record()
            log.error(
                f"{service} worker {number} (pid {pid}) {describe_exit(code)}",
                service=service,
                worker=number,
                pid=pid,
                signal=exit_signal,
                exit_code=code if code >= 0 else None,
                crashes_in_window=count,
            )
            if crashes.exhausted:
                log.error(
                    f"{service}: {count} worker crashes within {crashes.window_secs:g}s; giving up",
                    service=service,
                )
                gave_up = True
                stop(signal.SIGTERM, None)
                continue
            time.sleep(crashes.delay() if count > 1 else 0)  # a lone crash is respawned at once
            if stopping:
                continue
            with _stop_signals_held():
                new_pid = _fork_worker(run, sock, before)
                slots[new_pid] = number
            log.warning(
                f"{service} worker {number} respawned (pid {new_pid})", service=service, worker=number, pid=new_pid
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return not gave_up


def linux_only(action: Callable[[], None]) -> Callable[[], None]:
    return action if sys.platform == "linux" else (lambda: None)
