"""A bucket's keys a level at a time: objects, and the common prefixes a delimiter rolls keys up into.

The backends list keys in order after a cursor; a common prefix is found on the first key under it, and the listing
goes on after every key that prefix holds (the cursor jumps to the prefix followed by U+10FFFF, the last code point,
so nothing under it is read again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.storaged.backends.base import StoredObject
from services.storaged.s3.context import S3Context

MAX_KEYS = 1000
PAST_EVERYTHING_UNDER = "\U0010ffff"


@dataclass
class Level:
    """One page of a listing: objects and common prefixes (each with the first object found under it), in order."""

    objects: list[StoredObject] = field(default_factory=list)
    prefixes: list[tuple[str, StoredObject]] = field(default_factory=list)
    truncated: bool = False
    cursor: str | None = None  # the native key the next page starts after

    @property
    def count(self) -> int:
        return len(self.objects) + len(self.prefixes)


async def list_level(
    context: S3Context,
    prefix: str,
    *,
    delimiter: str,
    after: str | None,
    max_keys: int,
    exclude: Sequence[str] = (),
) -> Level:
    """Up to `max_keys` entries of the native keys under `prefix` after `after`, rolled up at `delimiter` ("": none)."""
    level = Level()
    cursor = after
    while True:
        want = max_keys - level.count + 1  # one more than fits tells whether the page is truncated
        page = await context.backend.list(prefix, after=cursor, limit=min(want, MAX_KEYS + 1), exclude=exclude)
        for info in page:
            rest = info.key[len(prefix) :]
            cut = rest.find(delimiter) if delimiter else -1
            if level.count == max_keys:
                level.truncated, level.cursor = True, cursor
                return level
            if cut < 0:
                level.objects.append(info)
                cursor = info.key
                continue
            common = prefix + rest[: cut + len(delimiter)]
            level.prefixes.append((common, info))
            cursor = common + PAST_EVERYTHING_UNDER
            break  # list again from past the common prefix
        else:
            if len(page) < min(want, MAX_KEYS + 1):
                level.cursor = None
                return level
            continue
        level.cursor = cursor
