from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from shared.config import ConfigError, load_config
from shared.config.toml import render_toml


def test_fallbacks_table_reads_and_renders_back(tmp_path: Path) -> None:
    path = tmp_path / "lakehouse.toml"
    path.write_text(
        '[chatd.fallbacks]\ncloud_judge = ["local_judge"]\n"kimi-k2.6:cloud" = ["openrouter/a/b", "local_fast"]\n'
    )
    config = load_config(str(path))
    assert config.chatd.fallbacks == {
        "cloud_judge": ["local_judge"],
        "kimi-k2.6:cloud": ["openrouter/a/b", "local_fast"],
    }
    assert tomllib.loads(render_toml(config))["chatd"]["fallbacks"] == config.chatd.fallbacks


def test_empty_fallback_candidate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"chatd\.fallbacks\.a\.0"):
        load_config(chatd={"fallbacks": {"a": [""]}})
