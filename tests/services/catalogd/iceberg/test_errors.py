"""Every refusal of the REST catalog in the spec's ErrorModel, whoever answers (catalogd, the gateway's auth), and
a refused commit changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException, UnauthorizedError

from scripts.net import free_port
from services.catalogd.app import create_app as create_catalogd
from shared.config import load_config
from tests.services.catalogd.iceberg.conftest import TOKEN
from tests.support.lake import Lake
from tests.support.servers import app_client

API = "/v1/iceberg/v1"
SCHEMA = pa.schema([pa.field("id", pa.int64())])


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["code"] == response.status_code
    return error


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/namespaces/nowhere", 404, "NoSuchNamespaceException"),
        ("GET", "/namespaces/nowhere/tables", 404, "NoSuchNamespaceException"),
        ("GET", "/namespaces/lakehouse/tables/missing", 404, "NoSuchTableException"),
        ("DELETE", "/namespaces/lakehouse/tables/missing", 404, "NoSuchTableException"),
        ("GET", "/namespaces/Bad%20Name", 400, "BadRequestException"),
        ("GET", "/namespaces/lakehouse/tables/x?snapshots=some", 400, "BadRequestException"),
        ("GET", "/namespaces?pageSize=0", 400, "BadRequestException"),
        ("DELETE", "/namespaces/lakehouse", 400, "BadRequestException"),
        ("POST", "/transactions/commit", 501, "NotImplementedException"),
        ("GET", "/no/such/route", 404, "NotFoundException"),
        ("PUT", "/namespaces", 405, "MethodNotAllowedException"),
    ],
)
def test_refusals_are_in_the_error_model(lake: Lake, method: str, path: str, status: int, kind: str) -> None:
    with lake.http() as http:
        response = http.request(method, API + path, json={} if method in ("POST", "PUT") else None)
    assert response.status_code == status, response.text
    assert error_of(response)["type"] == kind


def test_a_failed_requirement_is_409_and_changes_nothing(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("strict")
    table = catalog.create_table("strict.t", schema=SCHEMA)
    table.append(pa.table({"id": [1]}, schema=SCHEMA))
    before = catalog.load_table("strict.t").metadata_location
    stale = {
        "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 12345}],
        "updates": [{"action": "set-properties", "updates": {"k": "v"}}],
    }
    with lake.http() as http:
        conflict = http.post(f"{API}/namespaces/strict/tables/t", json=stale)
        uuid_wrong = http.post(
            f"{API}/namespaces/strict/tables/t",
            json={"requirements": [{"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}]},
        )
    assert conflict.status_code == 409
    assert error_of(conflict)["type"] == "CommitFailedException"
    assert error_of(uuid_wrong)["type"] == "CommitFailedException"
    after = catalog.load_table("strict.t")
    assert after.metadata_location == before
    assert "k" not in after.properties


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"updates": [{"action": "no-such-update"}]}',
        b'{"requirements": [{"type": "assert-nothing"}]}',
        b'{"updates": [{"action": "set-current-schema", "schema-id": 99}]}',
        b'{"updates": [{"action": "set-location", "location": "file:///etc"}]}',
    ],
)
def test_a_malformed_commit_is_400_and_changes_nothing(lake: Lake, body: bytes) -> None:
    catalog = lake.pyiceberg()
    if not catalog.namespace_exists("malformed"):
        catalog.create_namespace("malformed")
        catalog.create_table("malformed.t", schema=SCHEMA)
    before = catalog.load_table("malformed.t").metadata_location
    with lake.http() as http:
        response = http.post(
            f"{API}/namespaces/malformed/tables/t", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert error_of(response)["type"] == "BadRequestException"
    assert catalog.load_table("malformed.t").metadata_location == before


def test_a_lost_race_without_retries_fails_cleanly(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("racy")
    table = catalog.create_table("racy.t", schema=SCHEMA, properties={"commit.retry.num-retries": "0"})
    stale = catalog.load_table("racy.t")
    table.append(pa.table({"id": [1]}, schema=SCHEMA))
    with pytest.raises(CommitFailedException):
        stale.append(pa.table({"id": [2]}, schema=SCHEMA))  # based on the version before the other append
    assert catalog.load_table("racy.t").scan().to_arrow().column("id").to_pylist() == [1]


def test_a_token_is_required_when_auth_is_on(guarded_lake: Lake) -> None:
    with httpx.Client(base_url=guarded_lake.url) as http:
        refused = http.get(f"{API}/namespaces")
    assert refused.status_code == 401
    assert error_of(refused)["type"] == "NotAuthorizedException"
    with pytest.raises(UnauthorizedError):
        guarded_lake.pyiceberg(token="wrong-token").list_namespaces()
    catalog = guarded_lake.pyiceberg(token=TOKEN)
    assert ("lakehouse",) in catalog.list_namespaces()


async def test_storaged_down_is_503_service_unavailable() -> None:
    config = load_config(catalogd={"storaged_url": f"http://127.0.0.1:{free_port()}"})
    async with app_client(create_catalogd(config)) as http:
        listed = await http.get(f"{API}/namespaces/lakehouse/tables")
        loaded = await http.get(f"{API}/namespaces/lakehouse/tables/trips")
    for response in (listed, loaded):
        assert response.status_code == 503, response.text
        assert error_of(response)["type"] == "ServiceUnavailableException"
