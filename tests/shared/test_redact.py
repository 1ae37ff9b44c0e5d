from __future__ import annotations

import pytest

from shared.telemetry.redact import redact, secret_pattern

KEY = "sk-live-ABCdef1234"  # 18 characters


def test_key_after_a_long_message_is_masked_before_the_cut() -> None:
    # The leak that was found: a 275-character message followed by the key, cut at 300 characters.
    text = "x" * 275 + " " + KEY + " trailing"
    out = redact(text, [KEY], limit=300)
    assert "sk-live" not in out.lower()
    assert not any(KEY[:n] in out for n in range(4, len(KEY) + 1))
    assert out.startswith("x" * 275 + " ***")


@pytest.mark.parametrize(
    ("form", "masked"),
    [
        (KEY, "***"),
        (KEY.upper(), "***"),
        (KEY.lower(), "***"),
        (f"Bearer {KEY}", "Bearer ***"),
        (f"key={KEY};", "key=***;"),
        (f'"{KEY}"', '"***"'),
    ],
)
def test_key_masked_case_insensitively_wherever_it_appears(form: str, masked: str) -> None:
    assert redact(f"upstream said: {form} is wrong", [KEY]) == f"upstream said: {masked} is wrong"


def test_longest_secret_wins_and_empty_secrets_are_ignored() -> None:
    assert redact("abcdef and abc", ["abc", "abcdef", ""]) == "*** and ***"
    assert secret_pattern(["", ""]) is None
    assert redact("nothing secret", []) == "nothing secret"


def test_cut_marks_the_truncation() -> None:
    assert redact("0123456789", None, limit=4) == "0123…"
    assert redact("0123", None, limit=4) == "0123"
