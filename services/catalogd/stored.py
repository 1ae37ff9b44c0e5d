"""A catalog version as stored in storaged: the manifest, how it was made, (its Iceberg metadata is on the manifest)."""

from __future__ import annotations

from services.catalogd.schemas import CommitMode, Manifest


class StoredVersion(Manifest):
    mode: CommitMode
