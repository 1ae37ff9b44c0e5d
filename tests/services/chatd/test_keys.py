from __future__ import annotations

from pathlib import Path

from services.chatd.keys import read_env_file, resolve_key


def test_env_wins_over_file(tmp_path: Path) -> None:
    env_file = tmp_path / "or.env"
    env_file.write_text("OPENROUTER_API_KEY=from-file\n")
    assert resolve_key("OPENROUTER_API_KEY", str(env_file), {"OPENROUTER_API_KEY": "from-env"}) == "from-env"
    assert resolve_key("OPENROUTER_API_KEY", str(env_file), {}) == "from-file"
    assert resolve_key("OPENROUTER_API_KEY", str(env_file), {"OPENROUTER_API_KEY": ""}) == "from-file"


def test_missing_file_or_name_means_no_key(tmp_path: Path) -> None:
    assert resolve_key("K", str(tmp_path / "absent.env"), {}) == ""
    assert resolve_key("K", "", {}) == ""
    (tmp_path / "other.env").write_text("OTHER=1\n")
    assert resolve_key("K", str(tmp_path / "other.env"), {}) == ""


def test_env_file_syntax(tmp_path: Path) -> None:
    env_file = tmp_path / "keys.env"
    env_file.write_text(
        "# a comment\n\nexport A=alpha\nB = 'beta'\nC=\"gamma delta\"\nnot a pair\n  D=  spaced  \nE=x=y\n"
    )
    assert read_env_file(env_file) == {"A": "alpha", "B": "beta", "C": "gamma delta", "D": "spaced", "E": "x=y"}
