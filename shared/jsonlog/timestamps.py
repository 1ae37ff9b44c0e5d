"""RFC 3339 UTC timestamps as the logs write them: microseconds since the epoch in memory, one fixed format on disk."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

# "2026-11-25T22:30:00.123456Z": fixed width, so the strings also sort by time.
TS_FORMAT_LEN = 27


class TimestampCodec:
    """Formats and parses the fixed format, remembering the last whole second (logs write and replay in order)."""

    __slots__ = ("_format_prefix", "_format_second", "_parse_prefix", "_parse_second")

    def __init__(self) -> None:
        self._format_second = -1
        self._format_prefix = ""
        self._parse_prefix = ""
        self._parse_second = 0

    def format(self, micros: int) -> str:
        second, fraction = divmod(micros, 1_000_000)
        if second != self._format_second:
            self._format_second = second
            self._format_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._format_prefix}.{fraction:06d}Z"

    def parse(self, text: str) -> int:
        """Microseconds for a timestamp in the fixed format; ValueError for anything else."""
        if len(text) != TS_FORMAT_LEN or text[19] != "." or text[26] != "Z":
            raise ValueError(f"expected a timestamp like 2026-01-31T12:00:00.000000Z, got {text[:40]!r}")
        prefix = text[:19]
        if prefix != self._parse_prefix:
            self._parse_second = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
            self._parse_prefix = prefix
        return self._parse_second * 1_000_000 + int(text[20:26])


def now_micros() -> int:
    return time.time_ns() // 1000


def parse_rfc3339(text: str) -> int:
    """Microseconds since the epoch for any RFC 3339 time with an offset ("Z" or "+02:00"); ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"time needs an offset (e.g. 2026-01-31T12:00:00Z): {text[:40]!r}")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
