"""Files for pyiceberg without a filesystem: what it reads is fetched from storaged first, what it writes is kept in
memory and stored after, so its (blocking) metadata and Avro code runs off the event loop on plain bytes.
"""

from __future__ import annotations

import io
from types import TracebackType

from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def key_of(uri: str) -> str:
    """storaged's key of an `s3://bucket/key` URI of the lakehouse's own S3 API; ValueError for any other place."""
    for scheme in S3_SCHEMES:
        if uri.startswith(scheme):
            key = uri.removeprefix(scheme)
            if "/" not in key.strip("/"):
                raise ValueError(f"{uri!r} names a bucket, not a file")
            return key
    raise ValueError(f"{uri!r} is not in this lakehouse's storage (an s3://<bucket>/<key> URI of its S3 API)")


def uri_of(key: str) -> str:
    return "s3://" + key


class _Input(InputFile):
    def __init__(self, location: str, data: bytes | None) -> None:
        super().__init__(location)
        self.data = data

    def __len__(self) -> int:
        if self.data is None:
            raise FileNotFoundError(self.location)
        return len(self.data)

    def exists(self) -> bool:
        return self.data is not None

    def open(self, seekable: bool = True) -> InputStream:
        if self.data is None:
            raise FileNotFoundError(self.location)
        return io.BytesIO(self.data)


class _Stream(io.BytesIO):
    """What pyiceberg writes; its bytes land in `written` when it closes the stream."""

    def __init__(self, location: str, written: dict[str, bytes]) -> None:
        super().__init__()
        self.location = location
        self.written = written

    def close(self) -> None:
        if not self.closed:
            self.written[self.location] = self.getvalue()
        super().close()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _Output(OutputFile):
    def __init__(self, location: str, files: MemoryFileIO) -> None:
        super().__init__(location)
        self.files = files

    def __len__(self) -> int:
        return len(self.files.written[self.location])

    def exists(self) -> bool:
        return self.location in self.files.written or self.location in self.files.readable

    def to_input_file(self) -> InputFile:
        return _Input(self.location, self.files.written.get(self.location))

    def create(self, overwrite: bool = False) -> OutputStream:
        return _Stream(self.location, self.files.written)


class MemoryFileIO(FileIO):
    """`readable`: location -> bytes already fetched; `written`: location -> bytes pyiceberg wrote."""

    def __init__(self, readable: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self.readable = dict(readable or {})
        self.written: dict[str, bytes] = {}

    def new_input(self, location: str) -> InputFile:
        found = self.written.get(location, self.readable.get(location))
        return _Input(location, found)

    def new_output(self, location: str) -> OutputFile:
        return _Output(location, self)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        raise PermissionError("catalogd deletes files in storaged, not through pyiceberg")


class TailFile(io.RawIOBase):
    """A file of `size` bytes of which only the last `len(tail)` are known: enough for a Parquet footer."""

    def __init__(self, size: int, tail: bytes) -> None:
        super().__init__()
        self.size = size
        self.tail = tail
        self.start = size - len(tail)
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.position < self.start:
            raise OSError(f"read at {self.position} is before the fetched footer (from {self.start})")
        chunk = self.tail[self.position - self.start : self.position - self.start + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)
