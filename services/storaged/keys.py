"""Object keys: the one place their rules live, so that no backend ever sees a key that could escape its root."""

from __future__ import annotations

from services.storaged.schemas import RESERVED_PREFIXES, reserved_prefix
from shared.errors import LakehouseError

MAX_KEY_BYTES = 1024


def _rule_broken(key: str, *, whole: bool = True) -> str | None:
    """The rule `key` breaks, in words, or None for a valid key (`whole=False`: a valid start of a key)."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if not (1 if whole else 0) <= size <= MAX_KEY_BYTES:
        return f"must be 1 to {MAX_KEY_BYTES} bytes of UTF-8 (got {size})"
    if "\\" in key:
        return "must not contain a backslash"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in key):
        return "must not contain control characters"
    segments = key.split("/") if whole else key.split("/")[:-1]
    for segment in segments:
        if segment == "":
            return "must not have an empty segment (a leading, trailing or doubled /)"
        if segment in (".", ".."):
            return 'must not have a "." or ".." segment'
    return None


def check_key(key: str) -> str:
    """`key` if it is a valid object key; 400 invalid_request naming the broken rule otherwise."""
    broken = _rule_broken(key)
    if broken is not None:
        raise LakehouseError("invalid_request", f"invalid object key {key[:200]!r}: a key {broken}")
    return key


def check_prefix(prefix: str, *, name: str = "prefix") -> str:
    """A listing prefix (or `after`): empty, or the start of some valid key (so it may end with / or a dot)."""
    broken = _rule_broken(prefix, whole=False)
    if broken is not None:
        raise LakehouseError("invalid_request", f"invalid {name} {prefix[:200]!r}: a key {broken}")
    return prefix


def _refusal(what: str, prefix: str) -> LakehouseError:
    owner = RESERVED_PREFIXES[prefix]
    return LakehouseError(
        "forbidden", f"{what} is inside the reserved prefix {prefix!r}: only {owner} may use it, not the public API"
    )


def check_public_key(key: str) -> str:
    """`check_key`, and 403 forbidden for a key inside a reserved prefix."""
    check_key(key)
    prefix = reserved_prefix(key)
    if prefix is not None:
        raise _refusal(f"object key {key[:200]!r}", prefix)
    return key


def check_public_prefix(prefix: str) -> str:
    """`check_prefix`, and 403 forbidden for a listing prefix inside a reserved one (one that only reaches around
    a reserved prefix, e.g. "_cat", is fine: the public listing skips reserved keys)."""
    check_prefix(prefix)
    reserved = next((p for p in RESERVED_PREFIXES if prefix.startswith(p)), None)
    if reserved is not None:
        raise _refusal(f"listing prefix {prefix[:200]!r}", reserved)
    return prefix
