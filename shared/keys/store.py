"""The keys in storaged (`_keys/<id>.json`, through its internal route) and each gateway worker's cache of them.

The cache re-reads the key list every `refresh_secs` (1 s): a key made, rotated or revoked through any worker, or
any gateway, is in force everywhere within that. Between refreshes a request costs a dict lookup and one SHA-256.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog

from shared.errors import LakehouseError
from shared.keys.records import ID_PATTERN, KeyRecord
from shared.web.storage_routes import INTERNAL_OBJECTS, KEYS_PREFIX

REFRESH_SECS = 1.0


def _failure(exc: Exception | httpx.Response) -> LakehouseError:
    what = f"{exc.status_code} {exc.text[:200]}" if isinstance(exc, httpx.Response) else str(exc)
    return LakehouseError("upstream_unavailable", f"storaged (the key store): {what}")


class KeyStore:
    def __init__(self, storaged_url: str, token: str) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=storaged_url, headers=headers, timeout=10)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _path(self, key_id: str) -> str:
        return f"{INTERNAL_OBJECTS}/{KEYS_PREFIX}{key_id}.json"

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _failure(exc) from None

    async def listed(self) -> dict[str, str]:
        """key id -> ETag of every stored key."""
        found: dict[str, str] = {}
        after: str | None = None
        while True:
            params = {"prefix": KEYS_PREFIX, "limit": "10000", **({"after": after} if after else {})}
            response = await self._request("GET", INTERNAL_OBJECTS, params=params)
            if response.status_code != 200:
                raise _failure(response)
            try:
                page = response.json()
                entries = [(str(e["key"]), str(e["etag"])) for e in page["objects"]]
                after = page.get("next")
            except (ValueError, KeyError, TypeError, AttributeError):
                raise _failure(response) from None  # not storaged's listing: a wrong storaged_url
            for key, etag in entries:
                key_id = key.removeprefix(KEYS_PREFIX).removesuffix(".json")
                if ID_PATTERN.fullmatch(key_id):
                    found[key_id] = etag
            if not after:
                return found

    async def get(self, key_id: str) -> tuple[KeyRecord, str] | None:
        response = await self._request("GET", self._path(key_id))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _failure(response)
        return KeyRecord.model_validate_json(response.content), response.headers["etag"]

    async def put(self, record: KeyRecord, *, replacing: str | None = None) -> None:
        """Create (`replacing` None: the id must be new) or replace the key whose ETag is `replacing`."""
        headers = {
            "content-type": "application/json",
            **({"if-match": replacing} if replacing else {"if-none-match": "*"}),
        }
        response = await self._request("PUT", self._path(record.id), content=record.model_dump_json(), headers=headers)
        if response.status_code == 412:
            raise LakehouseError("version_conflict", f"key {record.id} changed meanwhile; try again")
        if response.status_code not in (200, 201):
            raise _failure(response)

    async def delete(self, key_id: str) -> bool:
        response = await self._request("DELETE", self._path(key_id))
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise _failure(response)
        return True


class KeyCache:
    """Every key, as of the last refresh; `get` never does I/O."""

    def __init__(self, store: KeyStore, refresh_secs: float = REFRESH_SECS) -> None:
        self.store = store
        self.refresh_secs = refresh_secs
        self._keys: dict[str, tuple[KeyRecord, str]] = {}
        # A refresh's listing may predate a key this worker made or revoked meanwhile: each refresh under way
        # collects those changes here, and applies them over what it read.
        self._changes_seen_by: list[dict[str, tuple[KeyRecord, str] | None]] = []
        self.log = structlog.get_logger("gateway")

    def get(self, key_id: str) -> KeyRecord | None:
        found = self._keys.get(key_id)
        return found[0] if found else None

    def __iter__(self) -> Iterator[KeyRecord]:
        return iter([record for record, _ in self._keys.values()])

    def remember(self, record: KeyRecord, etag: str = "") -> None:
        """A key this worker just wrote, in force here at once (the others see it at their next refresh)."""
        self._keys[record.id] = (record, etag)
        for changes in self._changes_seen_by:
            changes[record.id] = (record, etag)

    def forget(self, key_id: str) -> None:
        self._keys.pop(key_id, None)
        for changes in self._changes_seen_by:
            changes[key_id] = None

    async def refresh(self) -> None:
        changes: dict[str, tuple[KeyRecord, str] | None] = {}
        self._changes_seen_by.append(changes)
        try:
            listed = await self.store.listed()
            fresh: dict[str, tuple[KeyRecord, str]] = {}
            for key_id, etag in listed.items():
                known = self._keys.get(key_id)
                if known is not None and known[1] == etag:
                    fresh[key_id] = known
                    continue
                found = await self.store.get(key_id)
                if found is not None:
                    fresh[key_id] = found
        finally:
            self._changes_seen_by.remove(changes)
        for key_id, change in changes.items():
            if change is None:
                fresh.pop(key_id, None)
            else:
                fresh[key_id] = change
        self._keys = fresh

    async def run(self) -> None:
        """Refresh forever; a storaged that does not answer keeps the last keys known (and is logged)."""
        while True:
            try:
                await self.refresh()
            except (LakehouseError, ValueError) as exc:
                self.log.warning("key refresh failed; keeping the keys known", error=str(exc)[:300])
            await asyncio.sleep(self.refresh_secs)


@asynccontextmanager
async def running_cache(storaged_url: str, token: str) -> Any:
    store = KeyStore(storaged_url, token)
    cache = KeyCache(store)
    with contextlib.suppress(LakehouseError, ValueError):
        await cache.refresh()  # keys in force from the first request when storaged answers
    task = asyncio.create_task(cache.run())
    try:
        yield cache
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.aclose()
