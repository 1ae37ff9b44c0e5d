"""The catalog: datasets as immutable, create-only version objects in storaged, and nothing anywhere else.

Version N of dataset `d` is the object `_catalog/d/v<N, 10 digits>.json`, written with If-None-Match: *, so of two
commits racing to make version N+1 exactly one succeeds; the other reads the new current version and tries again
(or, when the caller named the version it expected, answers 409 version_conflict). The current version is the
highest one listed. No state lives in the process, so a restarted catalogd, or several on one storaged, see the same
catalog; the cache below holds only immutable objects, keyed by their ETag.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from services.catalogd.iceberg.recorder import Recorder
from services.catalogd.iceberg.store import IcebergStore, storage_failure
from services.catalogd.schemas import (
    Column,
    CommitRequest,
    DataFile,
    DatasetSummary,
    VersionSummary,
)
from services.catalogd.stored import StoredVersion
from services.storaged.client import StoragedClient, StorageError
from services.storaged.schemas import CATALOG_PREFIX, DATASETS_PREFIX, RESERVED_PREFIXES, reserved_prefix
from shared.errors import LakehouseError
from shared.web.body import describe_validation

MAX_COMMIT_ATTEMPTS = 500  # each lost race means another commit won: bounded only against a runaway
CACHE_ENTRIES = 4096
FILE_CHECKS_IN_FLIGHT = 16


def version_key(name: str, version: int) -> str:
    return f"{CATALOG_PREFIX}{name}/v{version:010d}.json"


def parse_version_key(key: str) -> tuple[str, int] | None:
    """(dataset, version) of a version object's key; None for anything else under the prefix."""
    rest = key.removeprefix(CATALOG_PREFIX)
    name, _, leaf = rest.partition("/")
    if not (leaf.startswith("v") and leaf.endswith(".json") and leaf[1:-5].isdigit()):
        return None
    return name, int(leaf[1:-5])


def table_location(name: str) -> str:
    """Where a dataset's Iceberg files go when the lakehouse makes the table: beside its ingested data."""
    return f"s3://{DATASETS_PREFIX}{name}"


def _not_found(name: str) -> LakehouseError:
    return LakehouseError("not_found", f"no dataset {name!r}")


def _corrupt(key: str, why: str) -> LakehouseError:
    parsed = parse_version_key(key)
    which = f"dataset {parsed[0]!r} version {parsed[1]}" if parsed else key
    return LakehouseError(
        "corrupt_manifest", f"{which} cannot be read: catalog object {key} is not a valid manifest ({why})"
    )


def schema_difference(current: Sequence[Column], proposed: Sequence[Column]) -> list[str]:
    """How `proposed` differs from `current`, one phrase per column; empty when they are the same."""
    before = {c.name: c for c in current}
    after = {c.name: c for c in proposed}
    differences = [f"{n} is missing" for n in before if n not in after]
    differences += [f"{n} is new" for n in after if n not in before]
    for n, column in after.items():
        old = before.get(n)
        if old is not None and (old.type, old.nullable) != (column.type, column.nullable):
            differences.append(
                f"{n} is {column.type}{'' if column.nullable else ' not null'}, "
                f"was {old.type}{'' if old.nullable else ' not null'}"
            )
    if not differences and [c.name for c in current] != [c.name for c in proposed]:
        differences.append(f"column order is {[c.name for c in proposed]}, was {[c.name for c in current]}")
    return differences


def check_commit(request: CommitRequest) -> None:
    names = [c.name for c in request.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LakehouseError("invalid_request", f"schema names a column more than once: {', '.join(duplicates)}")
    keys = [f.key for f in request.files]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise LakehouseError("invalid_request", f"files lists a key more than once: {', '.join(repeated)}")
    for key in keys:
        # catalogd reads storaged through the internal route, which reaches reserved keys: a commit naming one
        # (vectord's snapshot, a manifest) would otherwise make it a data file that SQL may read.
        reserved = reserved_prefix(key)
        if reserved is not None:
            owner = "the catalog's own" if reserved == CATALOG_PREFIX else f"{RESERVED_PREFIXES[reserved]}'s reserved"
            raise LakehouseError("invalid_request", f"file key {key!r} is inside {owner} {reserved}")


class Catalog:
    def __init__(self, storage: StoragedClient) -> None:
        self.storage = storage
        self._cache: OrderedDict[str, tuple[str, StoredVersion]] = OrderedDict()
        self._commit_locks: dict[str, asyncio.Lock] = {}
        # Every version is an Iceberg table version too: the recorder writes its metadata before the version lands.
        self.recorder = Recorder(IcebergStore(storage), table_location)

    # --- reading -----------------------------------------------------------------------------------------------

    async def _version_keys(self, prefix: str) -> list[tuple[str, int, str, str]]:
        """(dataset, version, key, etag) of every version object under `prefix`, in key order."""
        found = []
        try:
            async for info in self.storage.iter_objects(prefix, page_size=10_000):
                parsed = parse_version_key(info.key)
                if parsed is not None:
                    found.append((parsed[0], parsed[1], info.key, info.etag))
        except StorageError as exc:
            raise storage_failure(exc) from None
        return found

    async def _load(self, key: str, etag: str | None = None) -> StoredVersion | None:
        cached = self._cache.get(key)
        if cached is not None and etag is not None and cached[0] == etag:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            data, meta = await self.storage.get_small(key)
            fetched_etag = meta.etag
        except StorageError as exc:
            if exc.code == "not_found":
                return None
            raise storage_failure(exc) from None
        try:
            version = StoredVersion.model_validate_json(data)
        except ValidationError as exc:
            raise _corrupt(key, describe_validation(exc)[:300]) from None
        # A valid manifest of another dataset or version (copied, or forged) under this key must not pass as this one.
        if parse_version_key(key) != (version.name, version.version):
            raise _corrupt(key, f"it says it is dataset {version.name!r} version {version.version}")
        self._cache[key] = (fetched_etag, version)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return version

    async def _load_readable(self, key: str, etag: str) -> StoredVersion | None:
        # Deleting is how an operator gets rid of a corrupt version: its data files are unknowable, the rest are not.
        try:
            return await self._load(key, etag)
        except LakehouseError as exc:
            if exc.code != "corrupt_manifest":
                raise
            return None

    async def current(self, name: str) -> StoredVersion | None:
        listed = await self._version_keys(f"{CATALOG_PREFIX}{name}/")
        if not listed:
            return None
        _, _, key, etag = listed[-1]
        return await self._load(key, etag)

    async def manifest(self, name: str) -> StoredVersion:
        found = await self.current(name)
        if found is None:
            raise _not_found(name)
        return found

    async def version(self, name: str, version: int) -> StoredVersion:
        found = await self._load(version_key(name, version))
        if found is None:
            if await self.current(name) is None:
                raise _not_found(name)
            raise LakehouseError("not_found", f"dataset {name!r} has no version {version}")
        return found

    async def versions(self, name: str) -> list[VersionSummary]:
        listed = await self._version_keys(f"{CATALOG_PREFIX}{name}/")
        if not listed:
            raise _not_found(name)
        loaded = await asyncio.gather(*(self._load(key, etag) for _, _, key, etag in listed))
        return [
            VersionSummary(
                version=v.version,
                mode=v.mode,
                rows=v.rows,
                bytes=v.bytes,
                created_at=v.updated_at,
                snapshot_id=v.snapshot_id,
            )
            for v in loaded
            if v is not None
        ]

    async def datasets(self) -> list[DatasetSummary]:
        """Every dataset at its current version; one whose manifest cannot be read is listed with its `error`."""
        latest: dict[str, tuple[int, str, str]] = {}
        for name, number, key, etag in await self._version_keys(CATALOG_PREFIX):
            latest[name] = (number, key, etag)  # key order: the last one listed is the highest version

        async def summary(name: str, number: int, key: str, etag: str) -> DatasetSummary | None:
            try:
                v = await self._load(key, etag)
            except LakehouseError as exc:
                if exc.code != "corrupt_manifest":
                    raise
                return DatasetSummary(name=name, version=number, error=exc.message)
            if v is None:
                return None  # deleted since the listing
            return DatasetSummary(name=v.name, version=v.version, rows=v.rows, bytes=v.bytes, updated_at=v.updated_at)

        loaded = await asyncio.gather(*(summary(name, *found) for name, found in latest.items()))
        return [s for s in loaded if s is not None]

    # --- committing --------------------------------------------------------------------------------------------

    async def _check_files(self, files: Sequence[DataFile]) -> None:
        gate = asyncio.Semaphore(FILE_CHECKS_IN_FLIGHT)

        async def check(file: DataFile) -> None:
            async with gate:
                try:
                    meta = await self.storage.head(file.key)
                except StorageError as exc:
                    if exc.code == "not_found":
                        raise LakehouseError("invalid_request", f"file {file.key!r} is not in storaged") from None
                    if exc.code == "invalid_request":
                        raise LakehouseError("invalid_request", f"file key {file.key!r}: {exc.message}") from None
                    raise storage_failure(exc) from None
            if meta.size != file.bytes:
                raise LakehouseError(
                    "invalid_request",
                    f"file {file.key!r} is {meta.size} bytes in storaged, the commit says {file.bytes}",
                )

        await asyncio.gather(*(check(f) for f in files))

    def _next(self, name: str, request: CommitRequest, current: StoredVersion | None) -> StoredVersion:
        current_version = current.version if current else 0
        if request.mode == "create" and current is not None:
            raise LakehouseError("already_exists", f"dataset {name!r} already exists (version {current.version})")
        if request.expected_version is not None and request.expected_version != current_version:
            raise LakehouseError(
                "version_conflict",
                f"dataset {name!r} is at version {current_version}, the commit expected {request.expected_version}",
            )
        files = list(request.files)
        if request.mode == "append" and current is not None:
            differences = schema_difference(current.columns, request.columns)
            if differences:
                raise LakehouseError(
                    "schema_mismatch", f"append to {name!r} has a different schema: {'; '.join(differences)}"
                )
            files = current.files + files
        now = datetime.now(UTC)
        return StoredVersion(
            name=name,
            version=current_version + 1,
            mode=request.mode,
            columns=request.columns,
            files=files,
            rows=sum(f.rows for f in files),
            bytes=sum(f.bytes for f in files),
            created_at=current.created_at if current else now,
            updated_at=now,
        )

    async def commit(self, name: str, request: CommitRequest) -> StoredVersion:
        check_commit(request)
        await self._check_files(request.files)
        # One commit per dataset at a time in this process: a commit writes its Iceberg files before it races, so
        # commits of one process racing each other would mostly write files to throw away. Other processes' commits
        # still race it through the conditional PUT, as before.
        # (One lock per dataset name ever committed here: a few hundred bytes each, as many as there are datasets.)
        async with self._commit_locks.setdefault(name, asyncio.Lock()):
            return await self._commit(name, request)

    async def _commit(self, name: str, request: CommitRequest) -> StoredVersion:
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            current = await self.current(name)
            new, written = await self.recorder.record(
                self._next(name, request, current), current, request.files, lambda n: self.version(name, n)
            )
            if await self.publish(new):
                return new
            await self.recorder.store.remove(written)
            # Another commit made this version first: spread the retries so the losers do not collide again.
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise LakehouseError(
            "version_conflict", f"dataset {name!r} changed under every one of {MAX_COMMIT_ATTEMPTS} tries"
        )

    async def publish(self, new: StoredVersion) -> bool:
        """Store `new` as its dataset's next version: False when another version of that number landed first."""
        key = version_key(new.name, new.version)
        try:
            await self.storage.put(
                key, new.model_dump_json().encode(), content_type="application/json", if_none_match=True
            )
        except StorageError as exc:
            if exc.code in ("upstream_unavailable", "upstream_timeout"):
                # The PUT may or may not have landed before the connection failed: the object itself says.
                return await self._load(key) == new
            if exc.code != "precondition_failed":
                raise storage_failure(exc) from None
            return False
        return True

    # --- deleting ----------------------------------------------------------------------------------------------

    async def delete(self, name: str, *, purge: bool = True) -> None:
        """Forget every version of `name`; `purge`: also delete its data files and Iceberg files (the native API's
        DELETE always purges; an Iceberg drop without purgeRequested leaves the files to whoever wants them)."""
        listed = await self._version_keys(f"{CATALOG_PREFIX}{name}/")
        if not listed:
            raise _not_found(name)
        loaded = await asyncio.gather(*(self._load_readable(key, etag) for _, _, key, etag in listed))
        data_keys = {f.key for v in loaded if v is not None for f in v.files} if purge else set()
        # The table's Iceberg files: metadata, manifest lists and manifests, all under <location>/metadata/.
        metadata_dirs = {table_location(name).removeprefix("s3://") + "/metadata/"}
        metadata_dirs |= {
            v.metadata_location.removeprefix("s3://").rpartition("/metadata/")[0] + "/metadata/"
            for v in loaded
            if v is not None and v.metadata_location is not None
        }
        try:
            for prefix in sorted(metadata_dirs) if purge else ():
                data_keys |= {info.key async for info in self.storage.iter_objects(prefix)}
            # Newest manifest first: until the last one goes, what remains is an older, complete version.
            for _, _, key, _ in reversed(listed):
                await self.storage.delete(key)
                self._cache.pop(key, None)
            gate = asyncio.Semaphore(FILE_CHECKS_IN_FLIGHT)

            async def remove(key: str) -> None:
                async with gate:
                    await self.storage.delete(key)

            await asyncio.gather(*(remove(k) for k in sorted(data_keys)))
        except StorageError as exc:
            raise storage_failure(exc) from None

    async def rename(self, source: str, destination: str) -> None:
        """Every version of `source` becomes the same version of `destination`, then `source` is forgotten (its
        files stay where they are: the versions point at them). already_exists when `destination` has any."""
        listed = await self._version_keys(f"{CATALOG_PREFIX}{source}/")
        if not listed:
            raise _not_found(source)
        versions = await asyncio.gather(*(self._load(key, etag) for _, _, key, etag in listed))
        for version in versions:
            if version is not None and not await self.publish(version.model_copy(update={"name": destination})):
                raise LakehouseError("already_exists", f"dataset {destination!r} already exists")
        await self.delete(source, purge=False)

    async def names(self) -> list[str]:
        """Every dataset's name, whatever its manifest says."""
        return sorted({name for name, _, _, _ in await self._version_keys(CATALOG_PREFIX)})
