"""When a crashed process is restarted: with backoff, and not after MAX_CRASHES within WINDOW_SECS (the gateway's
master for its workers, `lakehouse up` for its services)."""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable

MAX_CRASHES = 5
WINDOW_SECS = 60.0
FIRST_DELAY_SECS = 0.5
MAX_DELAY_SECS = 10.0


def describe_exit(code: int) -> str:
    """A Popen/waitstatus exit code in words: "killed by SIGKILL" or "exited with status 3"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class CrashWindow:
    def __init__(
        self,
        *,
        max_crashes: int = MAX_CRASHES,
        window_secs: float = WINDOW_SECS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_crashes = max_crashes
        self.window_secs = window_secs
        self.clock = clock
        self.crashes: deque[float] = deque()

    def record(self) -> int:
        """Count a crash now; return how many fell within the window."""
        now = self.clock()
        self.crashes.append(now)
        while self.crashes and self.crashes[0] <= now - self.window_secs:
            self.crashes.popleft()
        return len(self.crashes)

    @property
    def exhausted(self) -> bool:
        return len(self.crashes) >= self.max_crashes

    def delay(self) -> float:
        """Backoff before the next start: 0.5 s after one recent crash, doubling, at most 10 s."""
        return float(min(FIRST_DELAY_SECS * 2 ** max(len(self.crashes) - 1, 0), MAX_DELAY_SECS))
