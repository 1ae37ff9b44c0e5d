"""The import rules docs/architecture.md states, read off the source with ast (no module is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What one service may take from another: the typed client and the wire models, nothing else.
SERVICE_FACE = frozenset({"client", "schemas"})
# The service-agnostic library: none of it may reach up into the composition root.
LIBRARY = ("shared/web", "shared/server", "shared/upstream", "shared/jsonlog", "shared/telemetry", "shared/config")


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_no_service_imports_another_services_internals() -> None:
    wrong = []
    for path in modules("services"):
        own = path.relative_to(REPO / "services").parts[0]
        for name in imports(path):
            parts = name.split(".")
            foreign = parts[0] == "services" and len(parts) > 1 and parts[1] != own
            if foreign and (len(parts) < 3 or parts[2] not in SERVICE_FACE):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == []


def test_shared_names_no_service_and_not_the_gateway() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("shared")
        for name in imports(path)
        if name.split(".")[0] in ("services", "gateway")
    ]
    assert wrong == []


def test_the_library_does_not_import_the_composition_root() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for folder in LIBRARY
        for path in modules(folder)
        for name in imports(path)
        if name.startswith("shared.stack")
    ]
    assert wrong == []


def test_the_gateway_imports_only_shared() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("gateway")
        for name in imports(path)
        if name.split(".")[0] in ("services", "tests", "scripts")
    ]
    assert wrong == []


def test_nothing_shipped_imports_the_tests() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for folder in ("shared", "gateway", "services", "scripts")
        for path in modules(folder)
        for name in imports(path)
        if name.split(".")[0] == "tests"
    ]
    assert wrong == []
