"""The registry: the eleven rows as the entry points declare them, and a toy service added by a row alone."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app as create_gateway
from shared.config import LakehouseConfig, load_config
from shared.config.base import ServiceSection
from shared.config.root import COMMON_SECTIONS
from shared.registry import Service, names, service, services, upstreams
from shared.stack.checks import check_service
from shared.stack.cli import main
from shared.stack.systemd import service_unit, write_units
from shared.stack.up import plan
from tests.support import toy
from tests.support.plugins import write_distribution
from tests.support.servers import run_server

ELEVEN = [
    "gateway",
    "storaged",
    "catalogd",
    "ingestd",
    "queryd",
    "vectord",
    "embedd",
    "pathwayd",
    "matrixd",
    "observerd",
    "chatd",
]


def test_the_entry_points_declare_the_eleven_in_port_order() -> None:
    assert names() == ELEVEN
    assert [s.default_bind for s in services()] == ["127.0.0.1:3110", *(f"127.0.0.1:{p}" for p in range(3211, 3221))]
    assert [s.name for s in services() if s.front_door] == ["gateway"]


def test_config_and_gateway_follow_the_registry() -> None:
    config = load_config()
    assert list(type(config).model_fields) == [*ELEVEN, *COMMON_SECTIONS]
    for row in services():
        section = config.section(row.name)
        assert isinstance(section, row.section)
        assert section.bind == row.default_bind
        # The static root spells each section with the type the row declares, so mypy and the registry agree.
        assert LakehouseConfig.model_fields[row.name].annotation in (row.section, *row.section.__mro__)
    url_keys = [key for key in type(config.gateway).model_fields if key.endswith("_url")]
    assert url_keys == [s.gateway_url_key for s in upstreams()]
    for row in upstreams():
        assert config.gateway.upstream_url(row.name) == f"http://{row.default_bind}"
        assert config.gateway.timeout(row.timeout_key) == row.timeout_secs


def test_a_row_must_name_a_one_segment_family() -> None:
    with pytest.raises(ValueError, match='family must be "/v1/<segment>"'):
        Service("bad", ServiceSection, toy.create_app, family="/v1/a/b")
    with pytest.raises(ValueError, match="needs timeout_help"):
        Service("bad", ServiceSection, toy.create_app, family="/v1/a", scopes=("a", "a"), timeout_secs=0)
    with pytest.raises(ValueError, match="names the scopes a key needs"):
        Service("bad", ServiceSection, toy.create_app, family="/v1/a")


@pytest.fixture
def toy_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    """The toy registered through a real entry point, as an installed package would register it."""
    where = write_distribution(tmp_path / "site", name="lakehouse-toy", rows={"toyd": "tests.support.toy:SERVICE"})
    monkeypatch.syspath_prepend(str(where))
    services.cache_clear()
    yield service("toyd")
    services.cache_clear()


def test_a_toy_row_is_a_config_section(toy_installed: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    assert names() == [*ELEVEN, "toyd"]
    monkeypatch.setenv("LH_TOYD__GREETING", "ahoy")
    config = load_config()
    section = config.section("toyd")
    assert isinstance(section, toy.ToyConfig)
    assert (section.greeting, section.bind) == ("ahoy", "127.0.0.1:3299")
    assert config.gateway.upstream_url("toyd") == "http://127.0.0.1:3299"
    assert config.gateway.timeout("toy") == 7.0
    assert load_config(toyd={"bind": "127.0.0.1:4299"}).section_bind("toyd") == "127.0.0.1:4299"


def test_a_toy_row_is_shown_by_config_show(toy_installed: Service, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown["toyd"] == {"bind": "127.0.0.1:3299", "greeting": "hello", "data_dir": "toy-data"}
    assert shown["gateway"]["toyd_url"] == "http://127.0.0.1:3299"


def test_a_toy_row_is_in_the_up_plan_and_the_systemd_units(toy_installed: Service, tmp_path: Path) -> None:
    config = load_config()
    assert plan(config)[-1] == ("toyd", "127.0.0.1:3299")
    written = write_units(
        config, tmp_path / "units", executable="/opt/lh/bin/lakehouse", config_path="/e/l.toml", user="lh"
    )
    assert tmp_path / "units" / "lakehouse-toyd.service" in written
    unit = service_unit(config, "toyd", executable="/opt/lh/bin/lakehouse", config_path="/e/l.toml", user="lh")
    assert "ExecStart=/opt/lh/bin/lakehouse serve toyd --log-format json" in unit
    assert "ReadWritePaths=/var/lib/lakehouse/toy-data" in unit
    assert "lakehouse-toyd.service" in (tmp_path / "units" / "lakehouse.target").read_text()


def test_config_check_for_a_toy_row(toy_installed: Service, tmp_path: Path) -> None:
    problems, _ = check_service(load_config(toyd={"data_dir": str(tmp_path / "absent")}), "toyd", {})
    assert problems == [f"toyd: directory {tmp_path / 'absent'} (toyd.data_dir) does not exist; create it"]
    assert check_service(load_config(toyd={"data_dir": str(tmp_path)}), "toyd", {}) == ([], [])


async def test_a_toy_row_is_served_by_the_gateway_probed_and_in_status(
    toy_installed: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    toy_app = toy_installed.app(load_config(toyd={"greeting": "ahoy"}))
    async with run_server(toy_app) as toy_url:
        others = {s.gateway_url_key: "" for s in upstreams() if s is not toy_installed}
        gateway = create_gateway(load_config(gateway={**others, "toyd_url": toy_url}))
        async with run_server(gateway) as url, httpx.AsyncClient(base_url=url) as c:
            prefixed = await c.get("/v1/toy/hello")
            exact = await c.get("/v1/toy-exact")
            health = await c.get("/v1/health")
            status = await asyncio.to_thread(main, ["status", "--url", url])
    assert prefixed.json() == {"greeting": "ahoy", "path": "/v1/toy/hello"}
    assert exact.json() == {"greeting": "ahoy", "path": "/v1/toy-exact"}
    assert health.status_code == 200
    assert list(health.json()["services"]) == ["toyd"]
    assert status == 0
    assert "toyd" in capsys.readouterr().out


def test_the_docs_check_asks_for_a_toy_rows_page(toy_installed: Service) -> None:
    from tests.test_docs import docs_gaps

    assert docs_gaps([toy_installed]) == [
        "README.md: the services table has no row ['toyd', '127.0.0.1:3299', '/v1/toy']",
        "docs/toyd.md does not exist",
        "docs/index.md does not list toyd.md",
    ]
