"""queryd's views when the catalog has a dataset it cannot read: every other view is served, that one keeps its last."""

from __future__ import annotations

from pathlib import Path

from tests.support.dataplane import data_plane

CSV = b"id,city\n1,amsterdam\n2,berlin\n"


async def test_a_corrupt_manifest_keeps_its_previous_view_and_every_other_view(tmp_path: Path) -> None:
    async with data_plane(tmp_path) as plane:
        assert plane.root is not None
        for name in ("trips", "other"):
            assert (await plane.ingest(name, CSV)).status_code == 201
        assert (await plane.http.post(f"{plane.queryd}/v1/sql/refresh")).status_code == 200
        # Behind storaged's back: trips's next version, and a dataset whose only version, are unreadable.
        (plane.root / "_catalog/trips/v0000000002.json").write_bytes(b"\x00not a manifest")
        (plane.root / "_catalog/broken").mkdir()
        (plane.root / "_catalog/broken/v0000000001.json").write_bytes(b"{}")
        assert (await plane.ingest("late", CSV)).status_code == 201
        refreshed = await plane.http.post(f"{plane.queryd}/v1/sql/refresh")
        trips = await plane.sql("select count(*) from trips")
        late = await plane.sql("select count(*) from late")
        broken = await plane.sql("select count(*) from broken")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["datasets"] == [
        {"name": "late", "version": 1, "files": 1},
        {"name": "other", "version": 1, "files": 1},
        {"name": "trips", "version": 1, "files": 1},
    ]
    assert trips.json()["rows"] == [[2]]
    assert late.json()["rows"] == [[2]]
    assert broken.status_code == 400
