"""Iceberg namespaces: `lakehouse` (always there, it holds the datasets) and the ones engines create.

A namespace is the object `_catalog/.namespaces/<a.b>.json` holding its properties (the leading dot keeps it out of
the dataset names, which start with a letter or an underscore). Each level of a name is a SQL identifier, because
a namespace's tables are SQL views `"<a.b>".<table>`; so is a table's name. A namespace some table names but no
object holds (a dataset committed as `a.t` through the native API) exists too, with no properties.
"""

from __future__ import annotations

import json

from services.catalogd.iceberg.errors import IcebergError, already_exists, bad_request, no_such_namespace
from services.catalogd.iceberg.store import storage_failure
from services.catalogd.schemas import NAME_PATTERN
from services.storaged.client import StoragedClient, StorageError
from services.storaged.schemas import CATALOG_PREFIX

LAKEHOUSE = "lakehouse"  # the namespace whose tables are the datasets, under their own names
NAMESPACES_PREFIX = f"{CATALOG_PREFIX}.namespaces/"
MAX_PROPERTY_ATTEMPTS = 50

Namespace = tuple[str, ...]


def check_namespace(levels: list[str] | tuple[str, ...]) -> Namespace:
    if not levels:
        raise bad_request("a namespace has at least one level")
    for level in levels:
        if not isinstance(level, str) or not NAME_PATTERN.fullmatch(level):
            raise bad_request(
                f"namespace level {str(level)[:80]!r} must match {NAME_PATTERN.pattern} (it becomes a SQL schema name)"
            )
    return tuple(levels)


def dataset_name(namespace: Namespace, table: str) -> str:
    """The catalog dataset a table is: `lakehouse.t` is `t`, `a.b.t` is `a.b.t`."""
    if not NAME_PATTERN.fullmatch(table):
        raise bad_request(f"table name {table[:80]!r} must match {NAME_PATTERN.pattern} (it becomes a SQL view name)")
    return table if namespace == (LAKEHOUSE,) else ".".join((*namespace, table))


def split_dataset(name: str) -> tuple[Namespace, str]:
    namespace, dot, table = name.rpartition(".")
    return (tuple(namespace.split(".")) if dot else (LAKEHOUSE,)), table


def _key(namespace: Namespace) -> str:
    return f"{NAMESPACES_PREFIX}{'.'.join(namespace)}.json"


class Namespaces:
    def __init__(self, storage: StoragedClient) -> None:
        self.storage = storage

    async def _read(self, namespace: Namespace) -> tuple[dict[str, str], str] | None:
        """(properties, etag) of a namespace's object; None when it has none."""
        try:
            data, meta = await self.storage.get_small(_key(namespace))
        except StorageError as exc:
            if exc.code == "not_found":
                return None
            raise storage_failure(exc) from None
        properties = json.loads(data)
        return {str(k): str(v) for k, v in properties.items()}, meta.etag

    async def stored(self) -> list[Namespace]:
        try:
            keys = [info.key async for info in self.storage.iter_objects(NAMESPACES_PREFIX)]
        except StorageError as exc:
            raise storage_failure(exc) from None
        return [tuple(k.removeprefix(NAMESPACES_PREFIX).removesuffix(".json").split(".")) for k in keys]

    async def properties(self, namespace: Namespace, implied: set[Namespace]) -> dict[str, str]:
        """A namespace's properties; NoSuchNamespace unless it is stored, implied by a table, or `lakehouse`."""
        found = await self._read(namespace)
        if found is not None:
            return found[0]
        if namespace == (LAKEHOUSE,) or namespace in implied:
            return {}
        raise no_such_namespace(".".join(namespace))

    async def create(self, namespace: Namespace, properties: dict[str, str], implied: set[Namespace]) -> None:
        if namespace == (LAKEHOUSE,) or namespace in implied:
            raise already_exists(f"Namespace {'.'.join(namespace)}")
        try:
            await self.storage.put(
                _key(namespace), json.dumps(properties).encode(), content_type="application/json", if_none_match=True
            )
        except StorageError as exc:
            if exc.code == "precondition_failed":
                raise already_exists(f"Namespace {'.'.join(namespace)}") from None
            raise storage_failure(exc) from None

    async def drop(self, namespace: Namespace) -> None:
        try:
            await self.storage.delete(_key(namespace))
        except StorageError as exc:
            if exc.code == "not_found":
                raise no_such_namespace(".".join(namespace)) from None
            raise storage_failure(exc) from None

    async def update(
        self, namespace: Namespace, removals: list[str], updates: dict[str, str], implied: set[Namespace]
    ) -> tuple[list[str], list[str], list[str]]:
        """(updated, removed, missing), applied atomically: a race with another update retries on the new state."""
        if set(removals) & set(updates):
            raise IcebergError(
                422,
                "UnprocessableEntityException",
                f"keys both removed and updated: {sorted(set(removals) & set(updates))}",
            )
        for _ in range(MAX_PROPERTY_ATTEMPTS):
            found = await self._read(namespace)
            if found is None:
                await self.properties(namespace, implied)  # NoSuchNamespace, unless it exists without an object
                current: dict[str, str] = {}
            else:
                current = found[0]
            missing = [k for k in removals if k not in current]
            new = {k: v for k, v in current.items() if k not in removals} | updates
            try:
                await self.storage.put(
                    _key(namespace),
                    json.dumps(new).encode(),
                    content_type="application/json",
                    if_match=found[1] if found is not None else None,
                    if_none_match=found is None,
                )
            except StorageError as exc:
                if exc.code == "precondition_failed":
                    continue
                raise storage_failure(exc) from None
            return sorted(updates), sorted(k for k in removals if k in current), sorted(missing)
        raise IcebergError(409, "CommitFailedException", "the namespace's properties changed under every try")
