"""Masking secrets out of text that leaves a process (error messages, log lines), before any truncation.

Masking after truncating leaks the part of a secret that survived the cut; matching only `Bearer <key>` leaks a key an
upstream echoes in any other form. So: every occurrence of each secret, case-insensitively, then the cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One compiled pattern for all non-empty `secrets` (longest first, so a key containing another is masked whole)."""
    keys = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not keys:
        return None
    return re.compile("|".join(re.escape(k) for k in keys), re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] | re.Pattern[str] | None, *, limit: int | None = None) -> str:
    """`text` with every secret replaced by ***, then cut to `limit` characters (with "…" when cut)."""
    pattern = secrets if isinstance(secrets, re.Pattern) or secrets is None else secret_pattern(secrets)
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text
