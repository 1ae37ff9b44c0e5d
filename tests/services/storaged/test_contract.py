"""storaged's HTTP contract, the same on every backend (the `storaged` fixture runs each test on local and on S3)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs

from tests.support.storage import StoragedService, seed_objects

OBJECTS = "/v1/storage/objects"


def client(service: StoragedService) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.url, timeout=60)


def root_files(service: StoragedService) -> list[str]:
    """Every file and directory under the local backend's root (none for S3)."""
    if service.root is None:
        return []
    return sorted(str(p.relative_to(service.root)) for p in service.root.rglob("*"))


async def test_put_get_head_delete_round_trip(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        put = await http.put(f"{OBJECTS}/a/b.csv", content=b"id,name\n1,x\n", headers={"content-type": "text/csv"})
        get = await http.get(f"{OBJECTS}/a/b.csv")
        head = await http.head(f"{OBJECTS}/a/b.csv")
        deleted = await http.delete(f"{OBJECTS}/a/b.csv")
        again = await http.delete(f"{OBJECTS}/a/b.csv")
        gone = await http.get(f"{OBJECTS}/a/b.csv")
    assert put.status_code == 201
    assert put.json() == {"key": "a/b.csv", "size": 12, "etag": put.headers["etag"]}
    assert put.headers["etag"].startswith('"')
    assert get.status_code == 200
    assert get.content == b"id,name\n1,x\n"
    assert get.headers["content-type"] == "text/csv"
    assert get.headers["content-length"] == "12"
    assert get.headers["etag"] == put.headers["etag"]
    assert get.headers["last-modified"].endswith(" GMT")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]
    assert (deleted.status_code, again.status_code) == (204, 204)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_overwrite_changes_etag_and_default_content_type(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        first = await http.put(f"{OBJECTS}/k", content=b"one")
        second = await http.put(f"{OBJECTS}/k", content=b"two!")
        get = await http.get(f"{OBJECTS}/k")
        empty = await http.put(f"{OBJECTS}/empty", content=b"")
        get_empty = await http.get(f"{OBJECTS}/empty")
    assert first.headers["etag"] != second.headers["etag"]
    assert get.content == b"two!"
    assert get.headers["content-type"] == "application/octet-stream"
    assert empty.json()["size"] == 0
    assert get_empty.status_code == 200
    assert get_empty.content == b""


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("sp%20ace/%C3%A9t%C3%A9.txt", "sp ace/été.txt"),
        ("q%3Fhash%23pct%25", "q?hash#pct%"),
        ("a%2Fb", "a/b"),  # decoded once: %2F is a slash
        ("%252e%252e/x", "%2e%2e/x"),  # decoded once only: literal percent signs, a harmless key
        ("..x/y..", "..x/y.."),
    ],
)
async def test_keys_are_percent_decoded_once(storaged: StoragedService, path: str, key: str) -> None:
    async with client(storaged) as http:
        put = await http.put(f"{OBJECTS}/{path}", content=b"v")
        get = await http.get(f"{OBJECTS}/{path}")
        listing = await http.get(OBJECTS)
    assert put.status_code == 201, put.text
    assert put.json()["key"] == key
    assert get.content == b"v"
    assert [o["key"] for o in listing.json()["objects"]] == [key]
    if storaged.root is not None:
        assert (storaged.root / key).read_bytes() == b"v"


async def test_ranges(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        await http.put(f"{OBJECTS}/r", content=b"0123456789")

        async def get(range_header: str) -> httpx.Response:
            return await http.get(f"{OBJECTS}/r", headers={"range": range_header})

        middle, tail, suffix, clipped, past, bad_suffix, junk = [
            await get(h)
            for h in ("bytes=2-5", "bytes=7-", "bytes=-3", "bytes=8-100", "bytes=10-", "bytes=-0", "lines=1-2")
        ]
    assert (middle.status_code, middle.content, middle.headers["content-range"]) == (206, b"2345", "bytes 2-5/10")
    assert middle.headers["content-length"] == "4"
    assert (tail.status_code, tail.content, tail.headers["content-range"]) == (206, b"789", "bytes 7-9/10")
    assert (suffix.content, suffix.headers["content-range"]) == (b"789", "bytes 7-9/10")
    assert (clipped.content, clipped.headers["content-range"]) == (b"89", "bytes 8-9/10")
    for response in (past, bad_suffix):
        assert response.status_code == 416
        assert response.headers["content-range"] == "bytes */10"
        assert response.json()["error"]["code"] == "range_not_satisfiable"
    assert (junk.status_code, junk.content) == (200, b"0123456789")


async def test_ranges_of_a_large_object(storaged: StoragedService) -> None:
    # Large enough that the local backend's bytes go from the file to the socket by splice, never read into Python:
    # every range must still be exactly its bytes.
    data = os.urandom(3 << 20)
    size = len(data)
    async with client(storaged) as http:
        await http.put(f"{OBJECTS}/large", content=data)
        whole = await http.get(f"{OBJECTS}/large")
        middle = await http.get(f"{OBJECTS}/large", headers={"range": "bytes=1000-2098151"})
        tail = await http.get(f"{OBJECTS}/large", headers={"range": f"bytes={size - 5}-"})
        suffix = await http.get(f"{OBJECTS}/large", headers={"range": "bytes=-1048577"})
    assert (whole.status_code, whole.content) == (200, data)
    assert (middle.status_code, middle.content) == (206, data[1000:2098152])
    assert middle.headers["content-range"] == f"bytes 1000-2098151/{size}"
    assert tail.content == data[-5:]
    assert suffix.content == data[-1048577:]


async def test_if_none_match_on_get_is_304(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        put = await http.put(f"{OBJECTS}/c", content=b"cached")
        etag = put.headers["etag"]
        hit = await http.get(f"{OBJECTS}/c", headers={"if-none-match": etag})
        listed = await http.get(f"{OBJECTS}/c", headers={"if-none-match": f'"other", {etag}'})
        miss = await http.get(f"{OBJECTS}/c", headers={"if-none-match": '"other"'})
        stale_range = await http.get(f"{OBJECTS}/c", headers={"range": "bytes=0-1", "if-range": '"other"'})
    assert (hit.status_code, hit.content, hit.headers["etag"]) == (304, b"", etag)
    assert listed.status_code == 304
    assert (miss.status_code, miss.content) == (200, b"cached")
    assert (stale_range.status_code, stale_range.content) == (200, b"cached")


async def test_conditional_puts(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        created = await http.put(f"{OBJECTS}/m", content=b"v1", headers={"if-none-match": "*"})
        again = await http.put(f"{OBJECTS}/m", content=b"v2", headers={"if-none-match": "*"})
        etag = created.headers["etag"]
        updated = await http.put(f"{OBJECTS}/m", content=b"v3", headers={"if-match": etag})
        stale = await http.put(f"{OBJECTS}/m", content=b"v4", headers={"if-match": etag})
        missing = await http.put(f"{OBJECTS}/nope", content=b"x", headers={"if-match": etag})
        weird = await http.put(f"{OBJECTS}/m", content=b"x", headers={"if-none-match": '"abc"'})
        final = await http.get(f"{OBJECTS}/m")
        nope = await http.get(f"{OBJECTS}/nope")
    assert created.status_code == 201
    assert updated.status_code == 201
    for response in (again, stale, missing):
        assert response.status_code == 412
        assert response.json()["error"]["code"] == "precondition_failed"
    assert weird.status_code == 400
    assert final.content == b"v3"
    assert nope.status_code == 404


async def test_concurrent_create_only_puts_have_one_winner(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        responses = await asyncio.gather(
            *(
                http.put(f"{OBJECTS}/race/v1", content=f"writer {i}".encode(), headers={"if-none-match": "*"})
                for i in range(50)
            )
        )
        stored = await http.get(f"{OBJECTS}/race/v1")
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [412] * 49
    winner = next(r for r in responses if r.status_code == 201)
    assert stored.headers["etag"] == winner.headers["etag"]
    assert root_files(storaged) in ([], ["race", "race/v1"])


async def test_too_large_declared_length_is_413_and_leaves_nothing(storaged: StoragedService) -> None:
    limit = storaged.config.storaged.max_put_bytes
    async with client(storaged) as http:
        response = await http.put(f"{OBJECTS}/big", content=b"x" * (limit + 1))
        listing = await http.get(OBJECTS)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert listing.json() == {"objects": [], "next": None}
    assert root_files(storaged) == []


async def test_oversized_chunked_body_is_413_mid_stream_and_leaves_nothing(storaged: StoragedService) -> None:
    limit = storaged.config.storaged.max_put_bytes
    block = b"y" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(limit // len(block) + 2):
            yield block

    async with client(storaged) as http:
        await http.put(f"{OBJECTS}/dir/keep", content=b"kept")
        try:
            response = await http.put(f"{OBJECTS}/dir/big", content=body())
            status = response.status_code
        except httpx.TransportError:
            status = 413  # the server answered and closed while we were still sending; what is left is what counts
        get = await http.get(f"{OBJECTS}/dir/big")
        listing = await http.get(OBJECTS)
    assert status == 413
    assert get.status_code == 404
    assert [o["key"] for o in listing.json()["objects"]] == ["dir/keep"]
    assert root_files(storaged) in ([], ["dir", "dir/keep"])


async def test_an_upload_cut_off_by_its_client_leaves_nothing_and_no_trace(storaged: StoragedService) -> None:
    # The client sends half of its declared body and hangs up: nothing is stored, no temp file stays, and the
    # log has an access line with 499 (client closed request), not an "unhandled exception" with a trace.
    host, port = storaged.url.removeprefix("http://").split(":")
    with capture_logs() as logs:
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"PUT {OBJECTS}/cut HTTP/1.1\r\nHost: {host}\r\nContent-Length: {8 << 20}\r\n\r\n".encode())
        writer.write(b"z" * (4 << 20))
        await writer.drain()
        writer.close()
        for _ in range(200):
            if any(entry["event"] == "request" for entry in logs):
                break
            await asyncio.sleep(0.05)
    async with client(storaged) as http:
        get = await http.get(f"{OBJECTS}/cut")
    assert [entry["status"] for entry in logs if entry["event"] == "request"] == [499]
    assert not [entry for entry in logs if entry["log_level"] == "error" or "exc_info" in entry]
    assert get.status_code == 404
    assert root_files(storaged) == []


async def test_listing_pagination_across_2500_keys(storaged: StoragedService) -> None:
    keys = [f"p/{i:04d}" for i in range(2500)]
    await seed_objects(storaged, {k: k.encode() for k in keys})
    async with client(storaged) as http:
        for key in ("other", "p-not-in-dir"):
            assert (await http.put(f"{OBJECTS}/{key}", content=key.encode())).status_code == 201
        seen: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            params = {"prefix": "p/", "limit": "1000", **({"after": after} if after else {})}
            page = (await http.get(OBJECTS, params=params)).json()
            pages += 1
            seen += [o["key"] for o in page["objects"]]
            if page["next"] is None:
                break
            after = page["next"]
        partial = (await http.get(OBJECTS, params={"prefix": "p/12", "limit": "10"})).json()
        loose = (await http.get(OBJECTS, params={"prefix": "p", "limit": "2"})).json()
        last = (await http.get(OBJECTS, params={"prefix": "p", "after": "p/2498"})).json()
        first = (await http.get(OBJECTS, params={"limit": "1"})).json()
        too_many = await http.get(OBJECTS, params={"limit": "10001"})
    assert pages == 3
    assert seen == keys
    assert [o["key"] for o in partial["objects"]] == [f"p/12{i:02d}" for i in range(10)]
    assert partial["next"] == "p/1209"
    # Byte order: "p-" sorts before "p/".
    assert [o["key"] for o in loose["objects"]] == ["p-not-in-dir", "p/0000"]
    assert last == {"objects": [last["objects"][0]], "next": None}
    assert last["objects"][0]["key"] == "p/2499"
    assert first["objects"][0]["key"] == "other"
    assert first["objects"][0]["size"] == 5
    assert set(first["objects"][0]) == {"key", "size", "etag", "last_modified"}
    assert too_many.status_code == 400


async def test_parent_and_child_keys(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        parent = await http.put(f"{OBJECTS}/a", content=b"parent")
        child = await http.put(f"{OBJECTS}/a/b", content=b"child")
        dir_child = await http.put(f"{OBJECTS}/c/d", content=b"child")
        dir_parent = await http.put(f"{OBJECTS}/c", content=b"parent")
        dir_get = await http.get(f"{OBJECTS}/c")
    assert parent.status_code == 201
    assert dir_child.status_code == 201
    if storaged.backend == "local":
        # A file system cannot hold a file and a directory under one name: documented as 409 key_conflict.
        for response in (child, dir_parent):
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "key_conflict"
        assert dir_get.status_code == 404
    else:
        assert (child.status_code, dir_parent.status_code, dir_get.content) == (201, 201, b"parent")


async def test_deleting_the_last_child_frees_the_parent_key(storaged: StoragedService) -> None:
    async with client(storaged) as http:
        await http.put(f"{OBJECTS}/x/y/z", content=b"1")
        await http.delete(f"{OBJECTS}/x/y/z")
        parent = await http.put(f"{OBJECTS}/x", content=b"2")
    assert parent.status_code == 201
    assert root_files(storaged) in ([], ["x"])
