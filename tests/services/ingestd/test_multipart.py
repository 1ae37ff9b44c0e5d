"""The streamed multipart reader: the one file part's bytes, whatever the chunking, and clear errors otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.ingestd.multipart import FilePart, boundary_of
from shared.errors import LakehouseError

BOUNDARY = "----lakehouse7MA4YWxk"


def body(*parts: tuple[str, bytes], epilogue: bytes = b"") -> bytes:
    out = b"preamble\r\n"
    for disposition, data in parts:
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode() + epilogue


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read(data: bytes, size: int) -> tuple[FilePart, bytes]:
    part = FilePart(chunked(data, size), BOUNDARY)
    await part.open()
    return part, b"".join([c async for c in part.chunks()])


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
async def test_file_part_survives_any_chunking(size: int) -> None:
    payload = b"a,b\r\n1,2\r\n--not-the-boundary\r\n" * 50
    part, data = await read(body(('form-data; name="file"; filename="trips.csv"', payload), epilogue=b"x"), size)
    assert data == payload
    assert part.filename == "trips.csv"
    assert part.field_name == "file"
    assert part.content_type == "text/csv"


async def test_a_second_part_is_refused() -> None:
    data = body(('form-data; name="file"; filename="a.csv"', b"a\n1\n"), ('form-data; name="x"', b"y"))
    with pytest.raises(LakehouseError, match="exactly one part"):
        await read(data, 10)


async def test_a_truncated_body_is_refused() -> None:
    data = body(('form-data; name="file"; filename="a.csv"', b"a\n1\n"))[:-30]
    with pytest.raises(LakehouseError, match="ended inside the file part"):
        await read(data, 10)


async def test_a_body_without_the_boundary_is_refused() -> None:
    with pytest.raises(LakehouseError, match="no part found"):
        await read(b"a,b\n1,2\n", 4)


def test_boundary_parameter() -> None:
    assert boundary_of(f'multipart/form-data; boundary="{BOUNDARY}"') == BOUNDARY
    with pytest.raises(LakehouseError):
        boundary_of("multipart/form-data")
