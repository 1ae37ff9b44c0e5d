"""The typed async client other services use to call catalogd (ingestd registers datasets, queryd polls the list).

    async with CatalogdClient(config.ingestd.catalogd_url, token=...) as catalog:
        manifest = await catalog.commit("trips", "append", schema=[Column(name="id", type="int64")], files=[...])
        poll = await catalog.poll_datasets(etag)   # queryd: poll.changed is False on 304

Every error answer raises `CatalogError` (a `RemoteError`) carrying the stack's code (already_exists,
schema_mismatch, version_conflict, not_found, ...), the status and the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from services.catalogd.schemas import (
    Column,
    CommitMode,
    CommitRequest,
    DataFile,
    DatasetList,
    DatasetSummary,
    Manifest,
    VersionList,
    VersionSummary,
)
from shared.upstream.client import RemoteError, ServiceClient, error_from_response, error_from_transport

DATASETS_PATH = "/v1/catalog/datasets"
SAFE_RETRY_METHODS = frozenset({"GET", "HEAD", "DELETE"})


class CatalogError(RemoteError):
    """catalogd answered with an error (or could not be reached); `.code`, `.status`, `.message`."""


@dataclass
class DatasetPoll:
    """The outcome of a conditional listing: `changed` False means the caller's ETag is still current."""

    changed: bool
    etag: str
    datasets: list[DatasetSummary]


def dataset_path(name: str, *rest: str) -> str:
    return "/".join([DATASETS_PATH, quote(name, safe=""), *rest])


class CatalogdClient(ServiceClient):
    async def _request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            try:
                response = await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # A reused connection closed under us: a read or delete can safely go again, once.
                if method not in SAFE_RETRY_METHODS:
                    raise
                response = await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url, "catalogd", CatalogError) from None
        if response.is_success or response.status_code == 304:
            return response
        raise error_from_response(response, "catalogd", CatalogError)

    async def list_datasets(self) -> list[DatasetSummary]:
        return (await self.poll_datasets(None)).datasets

    async def poll_datasets(self, etag: str | None) -> DatasetPoll:
        """The dataset list unless it still has `etag` (then `changed` is False and `datasets` empty)."""
        headers = {"if-none-match": etag} if etag else {}
        response = await self._request("GET", DATASETS_PATH, headers=headers)
        new_etag = response.headers.get("etag", "")
        if response.status_code == 304:
            return DatasetPoll(changed=False, etag=etag or new_etag, datasets=[])
        return DatasetPoll(True, new_etag, DatasetList.model_validate_json(response.content).datasets)

    async def get_manifest(self, name: str) -> Manifest:
        """The current manifest; CatalogError not_found for an unknown dataset."""
        return Manifest.model_validate_json((await self._request("GET", dataset_path(name))).content)

    async def versions(self, name: str) -> list[VersionSummary]:
        response = await self._request("GET", dataset_path(name, "versions"))
        return VersionList.model_validate_json(response.content).versions

    async def get_version(self, name: str, version: int) -> Manifest:
        response = await self._request("GET", dataset_path(name, "versions", str(version)))
        return Manifest.model_validate_json(response.content)

    async def commit(
        self,
        name: str,
        mode: CommitMode,
        *,
        schema: Sequence[Column],
        files: Sequence[DataFile],
        expected_version: int | None = None,
    ) -> Manifest:
        """Commit a new version: create (409 already_exists if it exists), append (same schema, or 409
        schema_mismatch) or replace. `expected_version` makes it conditional (409 version_conflict if stale)."""
        request = CommitRequest(mode=mode, columns=list(schema), files=list(files), expected_version=expected_version)
        response = await self._request(
            "POST",
            dataset_path(name, "commits"),
            content=request.model_dump_json(exclude_none=True),
            headers={"content-type": "application/json"},
        )
        return Manifest.model_validate_json(response.content)

    async def delete(self, name: str) -> None:
        """Remove the dataset, every version's manifest and every data file; CatalogError not_found if unknown."""
        await self._request("DELETE", dataset_path(name))
