"""queryd's config: refresh_every is a duration checked when the config loads, not when the poller first runs."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_config


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0)])
def test_refresh_every_is_parsed(text: str, seconds: float) -> None:
    assert load_config(queryd={"refresh_every": text}).queryd.refresh_every_secs == seconds


@pytest.mark.parametrize("text", ["", "30", "soon", "0s", "-5s", "30 s", "1d"])
def test_a_bad_refresh_every_fails_at_load(text: str) -> None:
    with pytest.raises(ConfigError, match=r"queryd\.refresh_every.*expected a positive duration"):
        load_config(queryd={"refresh_every": text})
