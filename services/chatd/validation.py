"""One readable line per field at fault, and the field OpenAI's `param` names, from a pydantic ValidationError.

pydantic reports a union's failure once per member, with the member's type in the location
(`format.literal['json']`); a client wants "format: ..." once.
"""

from __future__ import annotations

from pydantic import ValidationError

# Type names pydantic puts in a location for union members; none of them is a field of chatd's requests.
_MEMBER_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _is_member_tag(part: str | int) -> bool:
    return isinstance(part, str) and (part in _MEMBER_NAMES or any(c in part for c in "[](),"))


def describe(exc: ValidationError) -> tuple[str, str | None]:
    """(message, param): each field once, its messages joined; param is the first field's top-level name."""
    by_field: dict[str, list[str]] = {}
    first: str | None = None
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if not _is_member_tag(p)]
        where = ".".join(loc)
        if first is None and loc:
            first = loc[0]
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        messages = by_field.setdefault(where, [])
        if message not in messages:
            messages.append(message)
    parts = [f"{where}: {' or '.join(msgs)}" if where else " or ".join(msgs) for where, msgs in by_field.items()]
    return "; ".join(parts), first
