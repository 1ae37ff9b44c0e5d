"""Registering a service the way a package does: a dist-info folder whose entry_points.txt names the row."""

from __future__ import annotations

from pathlib import Path

from shared.registry import ENTRY_POINT_GROUP


def write_distribution(where: Path, *, name: str, rows: dict[str, str]) -> Path:
    """A minimal installed distribution under `where` (put `where` on sys.path / PYTHONPATH to install it)."""
    info = where / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{service} = {target}" for service, target in rows.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))
    return where
