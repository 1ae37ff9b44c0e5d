"""Single byte ranges (RFC 9110 §14): `bytes=a-b`, `bytes=a-`, `bytes=-n`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import LakehouseError

RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes start..end of an object, both inclusive, as Content-Range says them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def resolve_range(header: str | None, size: int) -> Span | None:
    """The span a Range header asks for, None for the whole object, 416 when nothing of it exists.

    A header that is not one well-formed byte range is ignored, as RFC 9110 lets a server do (the whole object is sent).
    """
    if header is None:
        return None
    match = RANGE_PATTERN.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable(size)
        return Span(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # malformed (last before first): ignored, as RFC 9110 says
    if start >= size:
        raise unsatisfiable(size)
    return Span(start, min(int(last), size - 1) if last else size - 1)


def unsatisfiable(size: int) -> LakehouseError:
    return LakehouseError(
        "range_not_satisfiable",
        f"the requested range is outside the object (size {size} bytes)",
        headers={"content-range": f"bytes */{size}"},
    )
