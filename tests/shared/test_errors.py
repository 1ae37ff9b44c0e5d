from __future__ import annotations

from typing import get_args

from shared.errors import STATUS_BY_CODE, ErrorCode


def test_every_error_code_has_exactly_one_status() -> None:
    assert list(STATUS_BY_CODE) == list(get_args(ErrorCode))
    assert all(400 <= status <= 599 for status in STATUS_BY_CODE.values())
