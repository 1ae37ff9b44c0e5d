"""What the local backend's files look like on disk: the attributes beside the bytes, temp names, key order, and
the handle on an open one.

Shared by the backend's reads and writes and its listing, which walks the tree in the order of the keys.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from anyio import to_thread

from services.storaged.backends.base import DEFAULT_CONTENT_TYPE, FileRegion, StoredObject, excluded
from services.storaged.ranges import Span

CONTENT_TYPE_ATTR = "user.lakehouse.content_type"
ETAG_ATTR = "user.lakehouse.etag"
METADATA_ATTR = "user.lakehouse.metadata"  # JSON object of the user metadata, present only when there is some
TEMP_MARK = "\\"  # in every temp file's name; never in a key
READ_BLOCK = 1 << 20


def etag_of(fd_or_path: int | str, st: os.stat_result) -> str:
    try:
        if isinstance(fd_or_path, int):
            return os.getxattr(fd_or_path, ETAG_ATTR).decode()
        return os.getxattr(fd_or_path, ETAG_ATTR, follow_symlinks=False).decode()
    except OSError:
        # A file put there by hand has no attribute: size and modification time still tell versions apart.
        return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def info_of(
    key: str, st: os.stat_result, etag: str, content_type: str, metadata: Mapping[str, str] | None = None
) -> StoredObject:
    modified = datetime.fromtimestamp(st.st_mtime, UTC).replace(microsecond=0)
    return StoredObject(key, st.st_size, etag, modified, content_type, metadata or {})


def walk(directory: Path, base: str, prefix: str, after: str, exclude: Sequence[str] = ()) -> Iterator[StoredObject]:
    """Objects under `directory` (whose keys start with `base`) in key order, pruned by prefix, after and exclude
    (an excluded directory is never entered, so a public listing costs nothing for vectord's thousands of keys)."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    named = []
    for entry in entries:
        if TEMP_MARK in entry.name or entry.is_symlink():
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if not is_dir and not entry.is_file(follow_symlinks=False):
            continue
        # Sorting a directory's files as "name" and its subdirectories as "name/" gives global key order.
        named.append((base + entry.name + ("/" if is_dir else ""), is_dir, entry))
    named.sort(key=lambda item: item[0])
    for key, is_dir, entry in named:
        if excluded(key if not is_dir else key[:-1], exclude) or (is_dir and excluded(key, exclude)):
            continue
        if is_dir:
            reaches_prefix = key.startswith(prefix) or prefix.startswith(key)
            all_before = key < after and not after.startswith(key)
            if reaches_prefix and not all_before:
                yield from walk(Path(entry.path), key, prefix, after, exclude)
            continue
        if not key.startswith(prefix) or key <= after:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        yield info_of(key, st, etag_of(entry.path, st), DEFAULT_CONTENT_TYPE)


@dataclass
class LocalHandle:
    info: StoredObject
    fd: int
    head: bytes | None  # the whole object when it was small enough to read while opening
    closed: bool = field(default=False)

    async def stream(self, span: Span | None) -> AsyncGenerator[bytes, None]:
        start, end = (span.start, span.end + 1) if span else (0, self.info.size)
        if self.head is not None:
            if end > start:
                yield self.head[start:end]
            return
        position = start
        while position < end:
            chunk = await to_thread.run_sync(os.pread, self.fd, min(READ_BLOCK, end - position), position)
            if not chunk:
                return  # truncated under us (by hand): end rather than spin
            position += len(chunk)
            yield chunk

    def file_region(self, span: Span | None) -> FileRegion | None:
        if self.head is not None:
            return None
        start, end = (span.start, span.end + 1) if span else (0, self.info.size)
        return FileRegion(self.fd, start, end - start)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
