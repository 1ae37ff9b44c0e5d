"""Per service and op over a time window: count, errors, error rate and nearest-rank p50/p95 of duration_ms."""

from __future__ import annotations

import re

import numpy as np

from services.observerd.schemas import OpSummary
from shared.errors import LakehouseError
from shared.jsonlog.index import LogIndex

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
WINDOW = re.compile(r"([1-9][0-9]{0,6})([smhd])")
MAX_WINDOW_SECS = 366 * 86_400


def window_micros(text: str) -> int:
    match = WINDOW.fullmatch(text)
    seconds = int(match[1]) * UNIT_SECONDS[match[2]] if match else 0
    if not match or seconds > MAX_WINDOW_SECS:
        raise LakehouseError(
            "invalid_request",
            f"window must be a number and a unit s, m, h or d (e.g. 1h, 15m), at most 366d; got {text[:40]!r}",
        )
    return seconds * 1_000_000


def summarize(index: LogIndex, since: int) -> list[OpSummary]:
    """Rows at or after `since` grouped by (service, op); percentiles use the nearest rank over ops with a duration."""
    n = index.visible
    start = index.first_row_at(n, since)
    services, ops, statuses = (index.tags[name] for name in ("service", "op", "status"))
    assert index.number is not None
    service_codes = services.codes.view(n)[start:].astype(np.int64)
    op_codes = ops.codes.view(n)[start:].astype(np.int64)
    failed = statuses.codes.view(n)[start:] == statuses.code_of.get("error", -1)
    durations = index.number.view(n)[start:]
    keys = (service_codes << 32) | op_codes
    groups, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(groups))
    errors = np.bincount(inverse, weights=failed, minlength=len(groups))
    order = np.argsort(inverse, kind="stable")
    ends = np.cumsum(counts)
    rows = []
    for group, key in enumerate(groups.tolist()):
        members = durations[order[ends[group] - counts[group] : ends[group]]]
        timed = members[~np.isnan(members)]
        p50, p95 = np.percentile(timed, [50, 95], method="inverted_cdf").tolist() if len(timed) else (None, None)
        count = int(counts[group])
        rows.append(
            OpSummary(
                service=services.values[key >> 32],
                op=ops.values[key & 0xFFFFFFFF],
                count=count,
                errors=int(errors[group]),
                error_rate=int(errors[group]) / count,
                p50_ms=p50,
                p95_ms=p95,
            )
        )
    rows.sort(key=lambda row: (row.service, row.op))
    return rows
