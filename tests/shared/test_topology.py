from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.app import create_app as create_gateway
from shared.app import service_app
from shared.cli import main
from shared.config import COMMON_SECTIONS, LakehouseConfig, load_config
from shared.runner import load_factory
from shared.sections import ServiceSection
from shared.stack import plan
from shared.topology import SERVICES, UPSTREAMS, Service
from tests.support.servers import run_server

REPO = Path(__file__).resolve().parents[2]


def readme_services_table() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## The services\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, _, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["service", "default bind", "gateway family"]
    return [[c.strip() for c in row.strip("|").split("|")] for row in body]


def test_readme_services_table_is_the_registry() -> None:
    config = load_config()
    expected = [[s.name, config.section_bind(s.name), s.family or "—"] for s in SERVICES.values()]
    # The role column is the coordinator's; service, bind and family must match the registry.
    assert [row[:3] for row in readme_services_table()] == expected


def test_readme_services_table_links_each_service_page() -> None:
    for row in readme_services_table():
        assert row[-1] == f"[docs/{row[0]}.md](docs/{row[0]}.md)"
        assert (REPO / "docs" / f"{row[0]}.md").is_file()


def test_docs_index_lists_every_page() -> None:
    index = (REPO / "docs" / "index.md").read_text()
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"]({page.name})" in index, page.name


def test_readme_names_every_exact_path_and_its_service() -> None:
    text = (REPO / "README.md").read_text()
    for service in UPSTREAMS:
        for path in service.exact_paths:
            assert f"`{path}` → {service.name}" in text


def test_config_and_gateway_follow_the_registry() -> None:
    config = load_config()
    assert list(LakehouseConfig.model_fields) == [*SERVICES, *COMMON_SECTIONS]
    for service in SERVICES.values():
        section = getattr(config, service.name)
        assert isinstance(section, service.section)
        assert section.bind == f"127.0.0.1:{service.port}"
    gateway_keys = list(type(config.gateway).model_fields)
    url_keys = [key for key in gateway_keys if key.endswith("_url")]
    assert url_keys == [s.gateway_url_key for s in UPSTREAMS]
    for service in UPSTREAMS:
        assert getattr(config.gateway, service.gateway_url_key) == f"http://127.0.0.1:{service.port}"
        assert getattr(config.gateway.timeouts, service.timeout_key) == service.timeout_secs
    assert list(type(config.gateway.timeouts).model_fields) == [s.timeout_key for s in UPSTREAMS]


def test_a_row_must_name_a_one_segment_family() -> None:
    with pytest.raises(ValueError, match='family must be "/v1/<segment>"'):
        Service("bad", "x:y", ServiceSection, 1, "/v1/a/b")
    with pytest.raises(ValueError, match="needs timeout_help"):
        Service("bad", "x:y", ServiceSection, 1, "/v1/a", timeout_secs=0)


class ToyConfig(ServiceSection):
    greeting: str = Field("hello", description="what the toy says")


def create_toy_app(config: LakehouseConfig) -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"greeting": config.toyd.greeting, "path": request.url.path})

    routes = [Route("/v1/toy/hello", hello), Route("/v1/toy-exact", hello)]
    return service_app("toyd", config, routes)


TOY = Service("toyd", f"{__name__}:create_toy_app", ToyConfig, 3299, "/v1/toy", ("/v1/toy-exact",), timeout_secs=7.0)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setitem(SERVICES, TOY.name, TOY)
    return TOY


def test_a_toy_row_is_a_config_section(toy: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_TOYD__GREETING", "ahoy")
    config = load_config()
    assert (config.toyd.greeting, config.toyd.bind) == ("ahoy", "127.0.0.1:3299")
    assert config.gateway.toyd_url == "http://127.0.0.1:3299"
    assert config.gateway.timeouts.toy == 7.0
    assert load_config(toyd={"bind": "127.0.0.1:4299"}).section_bind("toyd") == "127.0.0.1:4299"


def test_a_toy_row_is_shown_by_config_show(toy: Service, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown["toyd"] == {"bind": "127.0.0.1:3299", "greeting": "hello"}
    assert shown["gateway"]["toyd_url"] == "http://127.0.0.1:3299"


def test_a_toy_row_is_in_the_up_plan(toy: Service) -> None:
    assert plan(load_config())[-1] == ("toyd", "127.0.0.1:3299")
    assert [name for name, _ in plan(load_config())] == list(SERVICES)


async def test_a_toy_row_is_served_by_the_gateway_and_probed(toy: Service) -> None:
    toy_app = load_factory("toyd")(load_config(toyd={"greeting": "ahoy"}))
    async with run_server(toy_app) as toy_url:
        others = {s.gateway_url_key: "" for s in SERVICES.values() if s.family and s is not toy}
        gateway = create_gateway(load_config(gateway={**others, "toyd_url": toy_url}))
        async with run_server(gateway) as url, httpx.AsyncClient(base_url=url) as c:
            prefixed = await c.get("/v1/toy/hello")
            exact = await c.get("/v1/toy-exact")
            health = await c.get("/v1/health")
    assert prefixed.json() == {"greeting": "ahoy", "path": "/v1/toy/hello"}
    assert exact.json() == {"greeting": "ahoy", "path": "/v1/toy-exact"}
    assert health.status_code == 200
    assert list(health.json()["services"]) == ["toyd"]
    assert health.json()["services"]["toyd"]["status"] == "ok"
