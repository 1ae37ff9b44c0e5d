"""No key escapes: every trick is a 400 naming the rule, on every backend; nothing outside the local root moves."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from services.storaged.keys import check_key, check_prefix
from shared.errors import LakehouseError
from tests.support.storage import StoragedService

OBJECTS = "/v1/storage/objects"

# Raw request targets, sent byte for byte (no client-side normalisation of dot segments).
ESCAPES = [
    "..",
    "../outside",
    "../../../../etc/passwd",
    "a/../../outside",
    "a/..",
    ".",
    "./a",
    "a/./b",
    "%2e%2e/outside",
    "%2E%2E%2Foutside",
    "a%2F..%2F..%2Foutside",
    "a/%2e%2e/%2e%2e/outside",
    "%2e",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "a//b",
    "a/",
    "",
    "..%5Coutside",
    "a%5C..%5C..%5Coutside",
    "a\\..\\b",
    "x%00y",
    "x%0Ay",
    "x%7Fy",
    "x%C2%85y",
    "k" * 1025,
    "%C3%A9" * 513,
]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_escape_attempts_are_400(storaged: StoragedService, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=storaged.url) as http:
        for target in ESCAPES:
            for method in ("PUT", "GET", "HEAD", "DELETE"):
                request = http.build_request(method, f"{OBJECTS}/x", content=b"evil" if method == "PUT" else None)
                request.extensions["target"] = f"{OBJECTS}/{target}".encode()
                response = await http.send(request)
                assert response.status_code == 400, (method, target, response.status_code)
                if method != "HEAD":
                    assert response.json()["error"]["code"] == "invalid_request"
                    assert "key" in response.json()["error"]["message"]
        listing = await http.get(OBJECTS)
    assert listing.json()["objects"] == []
    # Nothing was written anywhere near the root.
    assert names(tmp_path) == (["objects"] if storaged.root else [])
    if storaged.root is not None:
        assert names(storaged.root) == []


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_bytes(b"secret")
    return directory


async def test_symlinks_inside_root_are_never_followed(storaged_local: StoragedService, outside: Path) -> None:
    root = storaged_local.root
    assert root is not None
    (root / "dirlink").symlink_to(outside, target_is_directory=True)
    (root / "filelink").symlink_to(outside / "secret")
    (root / "real").mkdir()
    (root / "real" / "nested").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(outside / "not-yet")
    attempts = [
        ("GET", "dirlink/secret"),
        ("HEAD", "dirlink/secret"),
        ("PUT", "dirlink/secret"),
        ("PUT", "dirlink/new"),
        ("DELETE", "dirlink/secret"),
        ("GET", "filelink"),
        ("PUT", "filelink"),
        ("DELETE", "filelink"),
        ("GET", "real/nested/secret"),
        ("PUT", "real/nested/deeper/new"),
        ("PUT", "dangling"),
        ("GET", "dangling"),
    ]
    async with httpx.AsyncClient(base_url=storaged_local.url) as http:
        for method, key in attempts:
            content = b"evil" if method == "PUT" else None
            for if_none_match in ({}, {"if-none-match": "*"}) if method == "PUT" else ({},):
                response = await http.request(method, f"{OBJECTS}/{key}", content=content, headers=if_none_match)
                assert response.status_code == 400, (method, key, if_none_match, response.status_code)
        listing = await http.get(OBJECTS)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert (root / "filelink").is_symlink()
    # A listing shows objects only: symlinks are not objects.
    assert listing.json()["objects"] == []


def test_key_rules_name_the_rule() -> None:
    cases = {
        "": "1 to 1024 bytes",
        "a//b": "empty segment",
        "a/../b": '"." or ".."',
        "a\\b": "backslash",
        "a\tb": "control",
        "\ud800": "UTF-8",
    }
    for key, words in cases.items():
        with pytest.raises(LakehouseError, match=words) as caught:
            check_key(key)
        assert caught.value.code == "invalid_request"
    assert check_key("a/b.c/..d/é") == "a/b.c/..d/é"
    assert check_prefix("a/.") == "a/."
    assert check_prefix("") == ""
    with pytest.raises(LakehouseError):
        check_prefix("a//")
