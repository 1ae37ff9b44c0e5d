"""`lakehouse systemd-units`: one unit per service plus lakehouse.target, and systemd itself accepts them."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.registry import names
from shared.stack.cli import main


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (systemd keys repeat, configparser's do not)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


@pytest.fixture
def units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    config = tmp_path / "lakehouse.toml"
    config.write_text(
        '[pathwayd]\npersist_path = "/var/lib/lakehouse/pathway.jsonl"\n'
        '[chatd]\nopenrouter_key_file = "/etc/lakehouse/or.env"\nkimi_key_file = ""\n'
    )
    out = tmp_path / "units"
    assert main(["systemd-units", "--out", str(out), "--config", str(config), "--user", "lh"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == sorted(
        [f"lakehouse-{name}.service" for name in names()] + ["lakehouse.target"]
    )
    return out


def test_one_unit_per_service_runs_the_installed_command_under_systemd_rules(units: Path, tmp_path: Path) -> None:
    for name in names():
        unit = read_unit(units / f"lakehouse-{name}.service")
        service = unit["Service"]
        (exec_start,) = service["ExecStart"]
        executable, *args = exec_start.split()
        assert Path(executable).is_absolute()
        assert Path(executable).name == "lakehouse"
        assert args == ["serve", name, "--log-format", "json"]
        assert service["Environment"] == [f"LH_CONFIG={tmp_path / 'lakehouse.toml'}"]
        assert service["Restart"] == ["on-failure"]
        assert (service["Type"], service["NotifyAccess"]) == (["notify"], ["main"])  # READY=1 once /health is ok
        assert service["User"] == service["Group"] == ["lh"]
        for hardening in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
            assert service[hardening] == ["yes"]
        assert service["ProtectSystem"] == ["strict"]
        assert unit["Install"]["WantedBy"] == ["lakehouse.target"]
    target = configparser.ConfigParser()
    target.read(units / "lakehouse.target")
    assert target["Unit"]["Wants"].split() == [f"lakehouse-{name}.service" for name in names()]


def test_chatd_reads_its_key_files_and_writers_get_their_paths(units: Path) -> None:
    chatd = read_unit(units / "lakehouse-chatd.service")["Service"]
    assert chatd["EnvironmentFile"] == [
        "-/etc/lakehouse/lakehouse.env",
        "-/etc/lakehouse/ollama_cloud.env",
        "-/etc/lakehouse/or.env",
        "-/etc/lakehouse/opencode.env",
    ]
    assert read_unit(units / "lakehouse-pathwayd.service")["Service"]["ReadWritePaths"] == ["/var/lib/lakehouse"]
    # A relative path in the config is relative to the state directory the service runs in.
    storaged = read_unit(units / "lakehouse-storaged.service")["Service"]
    assert storaged["WorkingDirectory"] == ["/var/lib/lakehouse"]
    assert storaged["StateDirectory"] == ["lakehouse"]
    assert storaged["ReadWritePaths"] == ["/var/lib/lakehouse/lakehouse-data/objects"]
    gateway = read_unit(units / "lakehouse-gateway.service")["Service"]
    assert gateway["EnvironmentFile"] == ["-/etc/lakehouse/lakehouse.env"]
    assert gateway["ReadWritePaths"] == ["/var/lib/lakehouse/lakehouse-data/gateway"]  # the keys' meters


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_every_unit_passes_systemd_analyze_verify(units: Path) -> None:
    files = sorted(str(p) for p in units.iterdir())
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # systemd only warns about an unknown key or a bad value: any line naming our units is a defect.
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "lakehouse" in line]
    assert complaints == []
