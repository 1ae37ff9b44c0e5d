"""`lakehouse config check --for NAME`: each failure it reports, and the all-clear."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.stack.cli import main

AS_ROOT = os.geteuid() == 0


def check_for(service: str, config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["config", "check", "--config", str(config), "--for", service])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_service_with_what_it_needs_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lh.toml"
    config.write_text(f'[pathwayd]\npersist_path = "{tmp_path}/pathway.jsonl"\n')
    assert check_for("pathwayd", config, capsys) == (0, "ok: pathwayd has what it needs on this box\n", "")


def test_a_refused_bind_gate_says_what_to_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lh.toml"
    config.write_text('[queryd]\nbind = "0.0.0.0:3214"\n')
    code, _, err = check_for("queryd", config, capsys)
    assert code == 1
    assert "queryd: refusing non-loopback bind 0.0.0.0:3214; set LH_QUERYD_ALLOW_NONLOOPBACK=1" in err


def test_an_empty_upstream_url_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lh.toml"
    config.write_text('[matrixd]\nembedd_url = ""\n')
    code, _, err = check_for("matrixd", config, capsys)
    assert code == 1
    assert "matrixd: matrixd.embedd_url is empty; set it to the URL of that service (LH_MATRIXD__EMBEDD_URL)" in err
    assert "vectord_url" not in err


def test_an_optional_empty_url_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lh.toml"
    config.write_text('[vectord]\nstoraged_url = ""\n')
    assert check_for("vectord", config, capsys)[0] == 0


def test_a_missing_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lh.toml"
    config.write_text(f'[observerd]\npersist_path = "{tmp_path}/absent/ops.jsonl"\n')
    code, _, err = check_for("observerd", config, capsys)
    assert code == 1
    assert f"observerd: directory {tmp_path}/absent (observerd.persist_path) does not exist; create it" in err


@pytest.mark.skipif(AS_ROOT, reason="root may write anywhere, so no directory is unwritable to it")
def test_an_unwritable_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    config = tmp_path / "lh.toml"
    config.write_text(f'[pathwayd]\npersist_path = "{locked}/p.jsonl"\n')
    code, _, err = check_for("pathwayd", config, capsys)
    assert code == 1
    assert "is not writable by this user" in err


@pytest.mark.skipif(AS_ROOT, reason="root may read any file, so no key file is unreadable to it")
def test_an_unreadable_key_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "or.env"
    key.write_text("OPENROUTER_API_KEY=x\n")
    key.chmod(0)
    config = tmp_path / "lh.toml"
    config.write_text(f'[chatd]\nopenrouter_key_file = "{key}"\n')
    code, _, err = check_for("chatd", config, capsys)
    assert code == 1
    assert f"chatd: key file {key} (openrouter) is not readable by this user" in err


def test_a_missing_key_is_a_note_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIMI_API_KEY", "k")
    config = tmp_path / "lh.toml"
    config.write_text(f'[chatd]\nopenrouter_key_file = "{tmp_path}/none.env"\n')
    code, out, _ = check_for("chatd", config, capsys)
    assert code == 0
    assert (
        f"note: chatd: openrouter will not be registered: set OPENROUTER_API_KEY or create {tmp_path}/none.env" in out
    )
    assert "kimi" not in out
    assert "k\n" not in out


def test_a_directory_where_a_key_file_should_be_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    key = tmp_path / "openrouter.env"
    key.mkdir()
    config = tmp_path / "lh.toml"
    config.write_text(f'[chatd]\nopenrouter_key_file = "{key}"\n')
    code, out, err = check_for("chatd", config, capsys)
    assert code == 1
    assert f"chatd: key file {key} (openrouter) is a directory, not a KEY=value file" in err
    assert "openrouter will not be registered" not in out


@pytest.mark.skipif(AS_ROOT, reason="root may search any directory, so no key file is out of its reach")
def test_a_key_file_in_an_unsearchable_directory_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    key = locked / "openrouter.env"
    key.write_text("OPENROUTER_API_KEY=x\n")
    locked.chmod(0)
    config = tmp_path / "lh.toml"
    config.write_text(f'[chatd]\nopenrouter_key_file = "{key}"\n')
    try:
        code, _, err = check_for("chatd", config, capsys)
    finally:
        locked.chmod(0o755)
    assert code == 1
    assert f"chatd: key file {key} (openrouter) is not readable by this user" in err
