"""The query parameters of a paged log listing (after, limit, since, until) and the page body, the same everywhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.responses import Response

from shared.errors import LakehouseError
from shared.jsonlog.timestamps import parse_rfc3339

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class PageQuery:
    after: int
    limit: int
    since: int | None  # microseconds, inclusive
    until: int | None  # microseconds, exclusive


def _int_param(params: QueryParams, name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise LakehouseError("invalid_request", f"{name} must be {expected}, got {raw[:40]!r}")
    return int(raw)


def time_param(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise LakehouseError("invalid_request", f"{name}: {exc}") from None


def page_query(params: QueryParams) -> PageQuery:
    return PageQuery(
        after=_int_param(params, "after", 0, 0, None),
        limit=_int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        since=time_param(params, "since"),
        until=time_param(params, "until"),
    )


def filters(
    params: QueryParams, names: Sequence[str], allowed: Mapping[str, frozenset[str]] | None = None
) -> dict[str, str]:
    """The exact-match filters present in the query; a value outside `allowed[name]` is a 400."""
    chosen = {name: params[name] for name in names if name in params}
    for name, value in chosen.items():
        values = (allowed or {}).get(name)
        if values is not None and value not in values:
            raise LakehouseError("invalid_request", f"{name} must be one of {sorted(values)}, got {value[:40]!r}")
    return chosen


def page_response(items: Sequence[bytes], next_seq: int | None) -> Response:
    """`{"items": [...], "next": seq | null}` spliced from the stored JSON, which is never parsed again."""
    body = b'{"items":[' + b",".join(items) + b'],"next":' + (b"null" if next_seq is None else str(next_seq).encode())
    return Response(body + b"}", media_type="application/json")
