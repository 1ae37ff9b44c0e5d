"""Numbers inside free-form JSON (a JSON Schema `format`): finite, and within 64 bits, so they reach a provider
exactly as sent (orjson refuses a wider int, and writes a non-finite float as null)."""

from __future__ import annotations

import math
from typing import Any

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def check_json_numbers(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no 1e999, Infinity or NaN)")
        elif isinstance(item, int) and not isinstance(item, bool) and not INT64_MIN <= item <= UINT64_MAX:
            raise ValueError("integers must fit in 64 bits")
    return value
