"""How long a provider that answered 429 is left alone: its Retry-After (seconds or an HTTP date), else 30 s."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

DEFAULT_COOLDOWN_SECS = 30.0
MAX_COOLDOWN_SECS = 24 * 3600.0  # a wild Retry-After must not park a provider for good


def retry_after_secs(value: str | None, now: float) -> float:
    """Seconds to wait per a Retry-After header value; the default when absent or unreadable."""
    if value:
        text = value.strip()
        if text.isdigit():
            return min(float(text), MAX_COOLDOWN_SECS)
        try:
            when = parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return DEFAULT_COOLDOWN_SECS
        return min(max(when - now, 0.0), MAX_COOLDOWN_SECS)
    return DEFAULT_COOLDOWN_SECS


class Cooldown:
    """One provider's cooldown; wall-clock based so /v1/chat/providers can show when it ends."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until: float | None = None

    def start(self, retry_after: str | None) -> None:
        now = time.time()
        self.until = now + retry_after_secs(retry_after, now)

    def remaining(self) -> float:
        """Seconds left (0 when not cooling); a finished cooldown is cleared here."""
        if self.until is None:
            return 0.0
        left = self.until - time.time()
        if left <= 0:
            self.until = None
            return 0.0
        return left

    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.remaining())))
