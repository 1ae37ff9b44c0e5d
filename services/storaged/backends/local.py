"""The local directory backend: one file per object under `root`, at the path its key names.

The file at `root/<key>` holds exactly the object's bytes (queryd reads Parquet there directly); Content-Type and
the ETag (the MD5 of the content, as S3 gives for a single-part upload) are extended attributes of that file.

No key can resolve outside `root`: keys are checked first (no `.`/`..` segment, no backslash), and every path is then
walked one directory at a time with O_NOFOLLOW relative to the parent's descriptor, so a symbolic link anywhere
under root (planted or raced in) is refused rather than followed. Writes go to a temp file in the object's own
directory, are fsynced, then renamed into place (create-only writes hard-link instead, which fails if the key exists
— atomic even across processes). Temp files carry a backslash in their name, which no key can, so they never collide
with an object and never appear in a listing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from anyio import to_thread

from services.storaged.backends.base import (
    DEFAULT_CONTENT_TYPE,
    BackendUnavailable,
    KeyLocks,
    Piece,
    Precondition,
    StoredObject,
    check_precondition,
    concatenated,
)
from services.storaged.backends.local_files import (
    CONTENT_TYPE_ATTR,
    ETAG_ATTR,
    METADATA_ATTR,
    TEMP_MARK,
    LocalHandle,
    etag_of,
    info_of,
    walk,
)
from shared.errors import LakehouseError

WRITE_BLOCK = 1 << 20  # bytes gathered before one write in a worker thread
INLINE_READ = 256 << 10  # objects this small are read while opening: one thread hop per small GET
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


async def write_blocks(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`body` gathered into blocks of about WRITE_BLOCK: one write, and one thread hop, per block."""
    pending: list[bytes] = []
    size = 0
    async for chunk in body:
        pending.append(chunk)
        size += len(chunk)
        if size >= WRITE_BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _symlink_error(key: str) -> LakehouseError:
    return LakehouseError("invalid_request", f"invalid object key {key!r}: it passes through a symbolic link")


def _conflict(key: str, why: str) -> LakehouseError:
    return LakehouseError("key_conflict", f"cannot store {key!r}: {why} (the local backend cannot hold both a/b and a)")


def _not_found(key: str) -> LakehouseError:
    return LakehouseError("not_found", f"no object {key!r}")


def _name_error(key: str, exc: OSError) -> LakehouseError | None:
    if exc.errno == errno.ENAMETOOLONG:
        return LakehouseError("invalid_request", f"invalid object key {key!r}: a segment is too long for the disk")
    return None


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_fd = -1
        self.locks = KeyLocks()

    async def start(self) -> None:
        await to_thread.run_sync(self._start)

    def _start(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise BackendUnavailable(f"cannot use storaged root {self.root}: {exc.strerror}") from None
        probe = f"{TEMP_MARK}lh-probe-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=self.root_fd)
        try:
            os.setxattr(fd, CONTENT_TYPE_ATTR, b"x")
        except OSError as exc:
            raise BackendUnavailable(
                f"storaged root {self.root} is on a file system without user extended attributes ({exc.strerror}); "
                "they hold each object's Content-Type and ETag"
            ) from None
        finally:
            os.close(fd)
            os.unlink(probe, dir_fd=self.root_fd)

    async def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    # --- walking -----------------------------------------------------------------------------------------------

    def open_dirs(self, key: str, dirs: list[str], *, create: bool) -> list[int]:
        """Descriptors of root's subdirectories along `dirs` (the root's own not included); the caller closes them."""
        fds: list[int] = []
        parent = self.root_fd
        try:
            for name in dirs:
                try:
                    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
                except FileNotFoundError:
                    if not create:
                        raise _not_found(key) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=parent)
                    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
                fds.append(fd)
                parent = fd
        except OSError as exc:
            through_link = exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_symlink(name, parent))
            for fd in fds:
                os.close(fd)
            if through_link:
                raise _symlink_error(key) from None
            if exc.errno == errno.ENOTDIR:
                if create:
                    raise _conflict(key, "a parent of it is an object") from None
                raise _not_found(key) from None
            raise _name_error(key, exc) or exc from None
        return fds

    def _current(self, key: str, dir_fd: int, name: str) -> str | None:
        """The ETag of the object `name` in `dir_fd`, None when there is none."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise _symlink_error(key)
        if stat.S_ISDIR(st.st_mode):
            raise _conflict(key, "other objects have it as their prefix")
        if not stat.S_ISREG(st.st_mode):
            raise _conflict(key, "something other than a file is in the way")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            return etag_of(fd, st)
        finally:
            os.close(fd)

    # --- writing -----------------------------------------------------------------------------------------------

    def _begin(self, key: str) -> tuple[list[int], str, int]:
        segments = key.split("/")
        # A delete may remove an empty directory between our mkdir and the temp file: walk again.
        for attempt in range(5):
            fds = self.open_dirs(key, segments[:-1], create=True)
            dir_fd = fds[-1] if fds else self.root_fd
            temp = f"{TEMP_MARK}lh-tmp-{secrets.token_hex(8)}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
            except FileNotFoundError:
                for d in fds:
                    os.close(d)
                if attempt == 4:
                    raise
                continue
            return fds, temp, fd
        raise AssertionError("unreachable")

    @staticmethod
    def _write(fd: int, data: bytes, digest: hashlib._Hash | None) -> None:
        if digest is not None:
            digest.update(data)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    @staticmethod
    def finish(fd: int, content_type: str, etag: str, metadata: Mapping[str, str]) -> None:
        os.setxattr(fd, CONTENT_TYPE_ATTR, content_type.encode())
        os.setxattr(fd, ETAG_ATTR, etag.encode())
        if metadata:
            os.setxattr(fd, METADATA_ATTR, json.dumps(dict(metadata)).encode())
        os.fsync(fd)

    def commit(
        self, key: str, dir_fd: int, temp: str, precondition: Precondition, *, temp_dir_fd: int | None = None
    ) -> os.stat_result:
        """Move the finished file `temp` (in `dir_fd`, or in `temp_dir_fd`) to `key`'s name in `dir_fd` if the
        precondition holds, atomically; the caller holds the key's lock."""
        name = key.rpartition("/")[2]
        source_fd = dir_fd if temp_dir_fd is None else temp_dir_fd
        check_precondition(key, precondition, self._current(key, dir_fd, name))
        try:
            if precondition.if_none_match:
                os.link(temp, name, src_dir_fd=source_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                os.unlink(temp, dir_fd=source_fd)
            else:
                os.rename(temp, name, src_dir_fd=source_fd, dst_dir_fd=dir_fd)
        except FileExistsError:
            raise LakehouseError("precondition_failed", f"If-None-Match: * failed: {key!r} already exists") from None
        except IsADirectoryError:
            raise _conflict(key, "other objects have it as their prefix") from None
        os.fsync(dir_fd)
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    async def put(
        self,
        key: str,
        body: AsyncIterator[bytes],
        *,
        content_type: str,
        precondition: Precondition,
        metadata: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> StoredObject:
        if precondition.is_conditional:
            # Fail before reading a large body when the answer is already known; checked again when committing.
            await to_thread.run_sync(self._precheck, key, precondition)

        async def fill(fd: int) -> str:
            # An ETag given (a multipart upload's) is not the content's MD5: no need to compute one.
            digest = hashlib.md5(usedforsecurity=False)
            feed = digest if etag is None else None
            async for block in write_blocks(body):
                await to_thread.run_sync(self._write, fd, block, feed)
            return etag or f'"{digest.hexdigest()}"'

        return await self._store(key, fill, content_type, precondition, dict(metadata or {}))

    async def compose(
        self, key: str, pieces: Sequence[Piece], *, content_type: str, metadata: Mapping[str, str], etag: str | None
    ) -> StoredObject:
        if etag is None:  # no ETag to keep: put computes the content's MD5
            body = concatenated(self, pieces)
            return await self.put(key, body, content_type=content_type, precondition=Precondition(), metadata=metadata)
        given = etag

        async def fill(fd: int) -> str:
            await to_thread.run_sync(self._concatenate, fd, pieces)
            return given

        return await self._store(key, fill, content_type, Precondition(), dict(metadata))

    def _concatenate(self, fd: int, pieces: Sequence[Piece]) -> None:
        for piece in pieces:
            handle = self._open(piece.key)
            try:
                offset, remaining = piece.offset, piece.size
                while remaining:
                    copied = os.copy_file_range(handle.fd, fd, remaining, offset, None)
                    if not copied:
                        raise LakehouseError("not_found", f"{piece.key!r} is shorter than the part it should hold")
                    offset += copied
                    remaining -= copied
            finally:
                os.close(handle.fd)

    async def _store(
        self,
        key: str,
        fill: Callable[[int], Awaitable[str]],
        content_type: str,
        precondition: Precondition,
        metadata: dict[str, str],
    ) -> StoredObject:
        """Write a temp file beside `key` with `fill` (which answers the ETag), fsync it, rename it into place."""
        fds, temp, fd = await to_thread.run_sync(self._begin, key)
        dir_fd = fds[-1] if fds else self.root_fd
        committed = False
        try:
            etag = await fill(fd)
            await to_thread.run_sync(self.finish, fd, content_type, etag, metadata)
            os.close(fd)
            fd = -1
            async with self.locks.hold(key):
                st = await to_thread.run_sync(self.commit, key, dir_fd, temp, precondition)
            committed = True
            return info_of(key, st, etag, content_type, metadata)
        finally:
            if fd >= 0:
                os.close(fd)
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
            for d in fds:
                os.close(d)

    def _precheck(self, key: str, precondition: Precondition) -> None:
        *dirs, name = key.split("/")
        try:
            fds = self.open_dirs(key, dirs, create=False)
        except LakehouseError as exc:
            if exc.code != "not_found":
                raise
            check_precondition(key, precondition, None)
            return
        try:
            check_precondition(key, precondition, self._current(key, fds[-1] if fds else self.root_fd, name))
        finally:
            for d in fds:
                os.close(d)

    # --- reading -----------------------------------------------------------------------------------------------

    def _open(self, key: str) -> LocalHandle:
        *dirs, name = key.split("/")
        fds = self.open_dirs(key, dirs, create=False)
        try:
            dir_fd = fds[-1] if fds else self.root_fd
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                raise _not_found(key) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _symlink_error(key) from None
                raise _name_error(key, exc) or exc from None
        finally:
            for d in fds:
                os.close(d)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _not_found(key)
            try:
                content_type = os.getxattr(fd, CONTENT_TYPE_ATTR).decode()
            except OSError:
                content_type = DEFAULT_CONTENT_TYPE
            try:
                metadata = json.loads(os.getxattr(fd, METADATA_ATTR))
            except OSError:
                metadata = {}
            head = os.pread(fd, st.st_size, 0) if st.st_size <= INLINE_READ else None
            return LocalHandle(info_of(key, st, etag_of(fd, st), content_type, metadata), fd, head)
        except BaseException:
            os.close(fd)
            raise

    async def open(self, key: str) -> LocalHandle:
        return await to_thread.run_sync(self._open, key)

    # --- deleting ----------------------------------------------------------------------------------------------

    def _delete(self, key: str) -> None:
        *dirs, name = key.split("/")
        try:
            fds = self.open_dirs(key, dirs, create=False)
        except LakehouseError as exc:
            if exc.code == "not_found":
                return
            raise
        try:
            dir_fd = fds[-1] if fds else self.root_fd
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                raise _symlink_error(key)
            if not stat.S_ISREG(st.st_mode):
                return  # a directory of other objects: the key itself names no object
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
            # Empty parents go too, so that a later PUT of the parent's own key does not conflict with them.
            parents = [self.root_fd, *fds]
            for depth in range(len(dirs) - 1, -1, -1):
                try:
                    os.rmdir(dirs[depth], dir_fd=parents[depth])
                except OSError:
                    break
        finally:
            for d in fds:
                os.close(d)

    async def delete(self, key: str) -> None:
        async with self.locks.hold(key):
            await to_thread.run_sync(self._delete, key)

    # --- listing -----------------------------------------------------------------------------------------------

    def _list(self, prefix: str, after: str | None, limit: int, exclude: Sequence[str]) -> list[StoredObject]:
        found = []
        for info in walk(self.root, "", prefix, after or "", exclude):
            found.append(info)
            if len(found) >= limit:
                break
        return found

    async def list(
        self, prefix: str, *, after: str | None, limit: int, exclude: Sequence[str] = ()
    ) -> list[StoredObject]:
        return await to_thread.run_sync(self._list, prefix, after, limit, exclude)
