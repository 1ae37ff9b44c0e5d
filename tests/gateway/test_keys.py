"""Client keys at the gateway, on a whole stack: made with the root token, each admitted exactly where its scopes
say (our JSON and the Iceberg error shape), revoked and rotated within a refresh everywhere, never shown again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.app import create_app as create_gateway
from shared.keys.scopes import scope_table
from shared.registry import Service, upstreams
from tests.support.lake import Lake, running_lake
from tests.support.servers import serve_in_thread

ROOT = "keys-test-root-token-0123456789"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("keys"), token=ROOT) as running:
        yield running


def make_key(lake: Lake, token: str = ROOT, **body: Any) -> httpx.Response:
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {token}"}) as http:
        return http.post("/v1/keys", json=body)


def as_key(lake: Lake, secret: str) -> httpx.Client:
    return httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {secret}"}, timeout=30)


def test_a_key_is_admitted_where_its_scopes_say_and_nowhere_else(lake: Lake) -> None:
    made = make_key(lake, name="bi-tool", scopes=["sql", "catalog:read"])
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["id"].startswith("LH")
    assert key["secret"].startswith(f"lhs_{key['id']}_")
    with as_key(lake, key["secret"]) as http:
        assert http.post("/v1/sql", json={"sql": "select 42 as answer"}).json()["rows"] == [[42]]
        assert http.get("/v1/catalog/datasets").status_code == 200
        assert http.get("/v1/iceberg/v1/namespaces").status_code == 200
        storage = http.get("/v1/storage/objects")
        ingest = http.post("/v1/ingest/x", content=b"a\n1\n", headers={"content-type": "text/csv"})
        iceberg = http.post("/v1/iceberg/v1/namespaces", json={"namespace": ["nope"]})
        keys = http.post("/v1/keys", json={"name": "escalate", "scopes": ["admin"]})
    assert storage.status_code == 403
    assert "lacks scope 'storage:read'" in storage.json()["error"]["message"]
    assert ingest.status_code == 403
    assert "'ingest'" in ingest.json()["error"]["message"]
    assert iceberg.status_code == 403
    assert iceberg.json()["error"]["type"] == "ForbiddenException"  # the catalog's own error shape
    assert keys.status_code == 403
    assert "'admin'" in keys.json()["error"]["message"]


def test_an_admin_key_manages_keys_and_listings_hold_no_secret(lake: Lake, capfd: pytest.CaptureFixture[str]) -> None:
    admin = make_key(lake, name="ops", scopes=["admin"]).json()
    made = make_key(lake, token=admin["secret"], name="teammate", scopes=["storage:read", "storage:write"])
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    with as_key(lake, admin["secret"]) as http:
        listed = http.get("/v1/keys").json()["keys"]
        shown = http.get(f"/v1/keys/{made.json()['id']}").json()
    assert {k["name"] for k in listed} >= {"ops", "teammate"}
    for entry in [*listed, shown]:
        assert not {"secret", "salt", "secret_hash"} & set(entry)
    with as_key(lake, secret) as http:
        assert http.put("/v1/storage/objects/team/a.txt", content=b"hi").status_code == 201
        assert http.get("/v1/storage/objects/team/a.txt").content == b"hi"
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert admin["secret"] not in out + err
    stored = b"".join(p.read_bytes() for p in (lake.root / "_keys").glob("*.json"))
    assert secret.encode() not in stored
    assert admin["secret"].encode() not in stored


def test_revoked_and_rotated_keys_stop_working_on_every_gateway_within_a_second(lake: Lake) -> None:
    key = make_key(lake, name="short-lived", scopes=["sql"]).json()
    rotated_key = make_key(lake, name="rotating", scopes=["sql"]).json()
    query = {"sql": "select 1"}
    # A second gateway on the same store: as another worker or box would, it learns keys by its refresh.
    with serve_in_thread(create_gateway(lake.config)) as other:
        other_lake = Lake(other, lake.root, lake.config)
        assert eventually_status(other_lake, key["secret"], query) == 200
        with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {ROOT}"}) as root:
            assert root.delete(f"/v1/keys/{key['id']}").status_code == 204
            rotated = root.post(f"/v1/keys/{rotated_key['id']}/rotate").json()
        with as_key(lake, key["secret"]) as http:
            assert http.post("/v1/sql", json=query).status_code == 401  # at once, where it was revoked
        assert eventually_status(other_lake, key["secret"], query) == 401
        assert eventually_status(other_lake, rotated_key["secret"], query) == 401
        assert eventually_status(other_lake, rotated["secret"], query) == 200
    assert rotated["id"] == rotated_key["id"]
    assert rotated["created_at"] == rotated_key["created_at"]


def eventually_status(lake: Lake, secret: str, body: dict[str, Any], within_secs: float = 1.5) -> int:
    """The status `secret` gets within `within_secs` once it settles on 200 or 401 (a refresh is every 1 s)."""
    deadline = time.monotonic() + within_secs
    with as_key(lake, secret) as http:
        first = http.post("/v1/sql", json=body).status_code
        while time.monotonic() < deadline:
            status = http.post("/v1/sql", json=body).status_code
            if status != first:
                return status
            time.sleep(0.05)
    return first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["sql", "root"]}, "unknown root"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["sql"]}, "name"),
        ({"name": "x", "scopes": ["sql"], "rpm": 0}, "rpm"),
        ({"name": "x", "scopes": ["sql"], "budget_period": "week"}, "budget_period"),
        ({"name": "x", "scopes": ["sql"], "expires_at": "2027-01-01T00:00:00"}, "time zone"),
    ],
)
def test_a_bad_key_request_is_400_naming_the_field(lake: Lake, body: dict[str, Any], field: str) -> None:
    made = make_key(lake, **body)
    assert made.status_code == 400
    assert field in made.json()["error"]["message"]


def test_an_expired_key_and_a_forged_secret_are_401(lake: Lake) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = make_key(lake, name="old", scopes=["sql"], expires_at=past).json()
    live = make_key(lake, name="live", scopes=["sql"]).json()
    forged = live["secret"][:-4] + ("AAAA" if not live["secret"].endswith("AAAA") else "BBBB")
    for secret in (expired["secret"], forged, "lhs_LHAAAAAAAAAAAAAAAAAA_" + "x" * 40):
        with as_key(lake, secret) as http:
            response = http.post("/v1/sql", json={"sql": "select 1"})
        assert response.status_code == 401, secret


@pytest.mark.parametrize("row", upstreams(), ids=lambda row: row.name)
def test_every_family_admits_its_own_scopes_and_refuses_the_rest(lake: Lake, row: Service) -> None:
    valid = scope_table().valid
    read, write = row.scopes
    others = sorted(valid - {read, write, "admin"})
    own = make_key(lake, name=f"{row.name}-own", scopes=[read, write]).json()
    foreign = make_key(lake, name=f"{row.name}-foreign", scopes=others).json()
    for family in row.routes:
        path = family if family in row.exact_paths else family + "/probe"
        for method, needed in (("GET", read), ("POST", write if not path.endswith(row.reads_by_post) else read)):
            with as_key(lake, own["secret"]) as http:
                allowed = http.request(method, path, json={})
            with as_key(lake, foreign["secret"]) as http:
                refused = http.request(method, path, json={})
            # Past the gate the service answers (or, not running here, the gateway's 502): never 401 or 403.
            assert allowed.status_code not in (401, 403), (method, path, allowed.text)
            assert refused.status_code == 403, (method, path)
            assert repr(needed) in refused.text
