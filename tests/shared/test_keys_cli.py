"""`lakehouse keys …` as an operator scripts it, against a stack with keys: create with --json gives `.secret`, the
key works, list shows no secret, usage counts, rotate and revoke take effect."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.lake import Lake, running_lake
from tests.support.live import clean_environment

ROOT = "keys-cli-root-token-0123456789"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("keys-cli"), token=ROOT) as running:
        yield running


def keys(lake: Lake, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.stack.cli", "keys", "--url", lake.url, "--token", ROOT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_environment(),
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sql_status(lake: Lake, secret: str) -> int:
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {secret}"}) as http:
        return http.post("/v1/sql", json={"sql": "select 1"}).status_code


def test_create_use_list_usage_rotate_and_revoke(lake: Lake, tmp_path: Path) -> None:
    made = as_json(keys(lake, "create", "bi-tool", "--scope", "sql", "--rpm", "100", "--expires", "30d", "--json"))
    assert made["scopes"] == ["sql"]
    assert made["rpm"] == 100
    assert made["expires_at"] is not None
    assert sql_status(lake, made["secret"]) == 200
    listed = keys(lake, "list")
    assert listed.returncode == 0, listed.stderr
    assert made["id"] in listed.stdout
    assert made["secret"] not in listed.stdout
    usage = as_json(keys(lake, "usage", made["id"], "--json"))
    assert usage["requests"]["in_period"] == 1
    assert usage["requests"]["rpm"] == 100
    rotated = as_json(keys(lake, "rotate", made["id"], "--json"))
    assert sql_status(lake, made["secret"]) == 401
    assert sql_status(lake, rotated["secret"]) == 200
    revoked = keys(lake, "revoke", made["id"])
    assert revoked.returncode == 0
    assert sql_status(lake, rotated["secret"]) == 401
    shown = keys(lake, "show", made["id"])
    assert shown.returncode == 1
    assert "no key" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_a_bad_scope_or_expiry_is_one_clear_line(lake: Lake) -> None:
    bad_scope = keys(lake, "create", "x", "--scope", "root")
    assert bad_scope.returncode == 1
    assert "unknown root" in bad_scope.stderr
    bad_expiry = keys(lake, "create", "x", "--scope", "sql", "--expires", "soon")
    assert bad_expiry.returncode == 2  # argparse's own refusal
    assert "expected a span" in bad_expiry.stderr
