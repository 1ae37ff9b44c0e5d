"""StoragedClient against a real storaged: every method, streamed both ways, errors as typed StorageError."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from scripts.net import free_port
from services.storaged.app import create_app
from services.storaged.client import StoragedClient, StorageError
from tests.support.storage import StoragedService, storaged_config


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield bytes([i % 256]) * size


async def test_every_method(storaged: StoragedService) -> None:
    async with StoragedClient(storaged.url) as client:
        put = await client.put("dir/streamed.bin", chunks(8, 100_000), content_type="application/x-test")
        async with client.get("dir/streamed.bin") as obj:
            streamed = b"".join([c async for c in obj.aiter_bytes()])
            meta, status = obj.meta, obj.status
        async with client.get("dir/streamed.bin", range="bytes=100000-100009") as part:
            ranged = b"".join([c async for c in part.aiter_bytes()])
            part_meta, part_status, content_range = part.meta, part.status, part.content_range
        head = await client.head("dir/streamed.bin")
        await client.put("dir/small", b"small", size=5)
        small = await client.get_bytes("dir/small")
        tail = await client.get_bytes("dir/small", range="bytes=-2")
        page = await client.list_objects("dir/", limit=1)
        everything = [o.key async for o in client.iter_objects("dir/", page_size=1)]
        exists_before = await client.exists("dir/small")
        await client.delete("dir/small")
        await client.delete("dir/small")
        exists_after = await client.exists("dir/small")
    assert put.key == "dir/streamed.bin"
    assert put.size == 800_000
    assert streamed == b"".join(bytes([i]) * 100_000 for i in range(8))
    assert (status, meta.size, meta.etag, meta.content_type) == (200, 800_000, put.etag, "application/x-test")
    assert (part_status, ranged, part_meta.size, content_range) == (
        206,
        b"\x01" * 10,
        800_000,
        "bytes 100000-100009/800000",
    )
    assert head == meta
    assert (small, tail) == (b"small", b"ll")
    assert [o.key for o in page.objects] == ["dir/small"]
    assert page.next == "dir/small"
    assert everything == ["dir/small", "dir/streamed.bin"]
    assert (exists_before, exists_after) == (True, False)


async def test_errors_carry_the_stack_code(storaged: StoragedService) -> None:
    async with StoragedClient(storaged.url) as client:
        first = await client.put("cond", b"1", if_none_match=True)
        failures = {}
        calls = {
            "create twice": client.put("cond", b"2", if_none_match=True),
            "stale if-match": client.put("cond", b"2", if_match='"nope"'),
            "missing get": client.get_bytes("missing"),
            "missing head": client.head("missing"),
            "bad key": client.put("a/../b", b"x"),
            "too large": client.put("big", b"x" * (storaged.config.storaged.max_put_bytes + 1)),
            "bad range": client.get_bytes("cond", range="bytes=5-"),
        }
        for label, call in calls.items():
            with pytest.raises(StorageError) as caught:
                await call
            failures[label] = (caught.value.status, caught.value.code)
        updated = await client.put("cond", b"3", if_match=first.etag)
    assert failures == {
        "create twice": (412, "precondition_failed"),
        "stale if-match": (412, "precondition_failed"),
        "missing get": (404, "not_found"),
        "missing head": (404, "not_found"),
        "bad key": (400, "invalid_request"),
        "too large": (413, "payload_too_large"),
        "bad range": (416, "range_not_satisfiable"),
    }
    assert updated.size == 1


async def test_unreachable_storaged_is_upstream_unavailable() -> None:
    async with StoragedClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(StorageError) as caught:
            await client.get_bytes("x")
    assert (caught.value.status, caught.value.code, caught.value.service) == (502, "upstream_unavailable", "storaged")


async def test_in_process_transport(tmp_path: Path) -> None:
    app = create_app(storaged_config("local", root=tmp_path / "objects"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with StoragedClient("http://storaged", transport=transport) as client:
            await client.put("k", b"v")
            assert await client.get_bytes("k") == b"v"
