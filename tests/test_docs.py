"""The README's services table and docs/ follow the registry: a row per service, a page per service, an index of
every page, and chatd's provider table as shared/config/chatd.py has it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.config import load_config
from shared.config.chatd import PROVIDERS
from shared.registry import Service, services, upstreams

REPO = Path(__file__).resolve().parents[1]


def readme_services_table() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## The services\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, _, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["service", "default bind", "gateway family"]
    return [[c.strip() for c in row.strip("|").split("|")] for row in body]


def docs_gaps(rows: Sequence[Service], root: Path = REPO) -> list[str]:
    """What the README and docs/ miss of the registry `rows`; empty when they follow it."""
    config = load_config()
    table = {row[0]: row for row in readme_services_table()}
    index = (root / "docs" / "index.md").read_text()
    gaps = []
    for s in rows:
        expected = [s.name, config.section_bind(s.name), s.family or "—"]
        if table.get(s.name, [])[:3] != expected:
            gaps.append(f"README.md: the services table has no row {expected}")
        if not (root / "docs" / f"{s.name}.md").is_file():
            gaps.append(f"docs/{s.name}.md does not exist")
        if f"]({s.name}.md)" not in index:
            gaps.append(f"docs/index.md does not list {s.name}.md")
    return gaps


def test_readme_and_docs_follow_the_registry() -> None:
    assert docs_gaps(services()) == []
    assert [row[0] for row in readme_services_table()] == [s.name for s in services()]


def test_readme_services_table_links_each_service_page() -> None:
    for row in readme_services_table():
        assert row[-1] == f"[docs/{row[0]}.md](docs/{row[0]}.md)"


def test_docs_index_lists_every_page() -> None:
    index = (REPO / "docs" / "index.md").read_text()
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"]({page.name})" in index, page.name


def test_readme_names_every_exact_path_and_its_service() -> None:
    text = (REPO / "README.md").read_text()
    for service in upstreams():
        for path in (*service.exact_paths, *service.more_families):
            assert f"`{path}` → {service.name}" in text


def test_chatd_docs_name_every_provider_as_the_table_has_it() -> None:
    text = (REPO / "docs" / "chatd.md").read_text()
    for p in PROVIDERS:
        assert f"`{p.prefix}" in text, p.prefix
        assert f"`{p.url_key}`" in text or p.url_key in text, p.url_key
        if p.key_env:
            assert p.key_env in text, p.key_env
