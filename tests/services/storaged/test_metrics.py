"""storaged's byte counters on /metrics: bodies stored (in) and bodies sent (out), per backend."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.storage import StoragedService

OBJECTS = "/v1/storage/objects"


def storage_bytes(exposition: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["backend"], sample.labels["direction"]): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "lakehouse_storage_bytes_total"
    }


async def test_bytes_in_and_out_are_counted(storaged: StoragedService) -> None:
    async with httpx.AsyncClient(base_url=storaged.url, timeout=60) as http:
        assert (await http.put(f"{OBJECTS}/m/one", content=b"x" * 1000)).status_code == 201
        assert (await http.put(f"{OBJECTS}/m/two", content=b"y" * 24)).status_code == 201
        assert len((await http.get(f"{OBJECTS}/m/one")).content) == 1000
        ranged = await http.get(f"{OBJECTS}/m/one", headers={"range": "bytes=0-9"})
        assert ranged.status_code == 206
        assert (await http.head(f"{OBJECTS}/m/two")).status_code == 200
        counters = storage_bytes((await http.get("/metrics")).text)
    assert counters == {(storaged.backend, "in"): 1024, (storaged.backend, "out"): 1010}
