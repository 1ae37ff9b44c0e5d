"""catalogd's wire models: manifests, the dataset and version listings, and the commit request."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from shared.web.wire import WireModel as SharedWireModel

NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# A table of an Iceberg namespace other than `lakehouse` is the dataset `<namespace levels>.<table>`.
QUALIFIED_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62}){0,15}$")

CommitMode = Literal["create", "append", "replace"]


def check_name(name: str) -> str:
    """A dataset name becomes a SQL view name: lowercase letters, digits, underscores, not starting with a digit;
    `a.b.t` is table `t` of Iceberg namespace `a.b`, the view `"a.b".t`."""
    if not QUALIFIED_PATTERN.fullmatch(name):
        raise ValueError(
            f"dataset name must match {NAME_PATTERN.pattern}, or be <namespace>.<table> of such names "
            f"(it becomes a SQL view name), got {name!r}"
        )
    return name


DatasetName = Annotated[str, AfterValidator(check_name)]


class WireModel(SharedWireModel):
    # "schema" is the wire name; the attribute is `columns` because `schema` is taken on BaseModel.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Column(WireModel):
    name: str = Field(min_length=1)
    type: str = Field(min_length=1, description="an Arrow type string: int64, double, string, timestamp[us], ...")
    nullable: bool = True


class DataFile(WireModel):
    key: str = Field(min_length=1, description="the storaged key of a Parquet file")
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)


class Manifest(WireModel):
    """A dataset at one version: every file that makes it up, and its schema."""

    name: str
    version: int
    columns: list[Column] = Field(alias="schema")
    files: list[DataFile]
    rows: int
    bytes: int
    created_at: datetime
    updated_at: datetime
    # The Iceberg metadata file of this version (s3://…); None on versions stored before the catalog spoke Iceberg,
    # whose metadata is derived when first asked for (services/catalogd/iceberg/recorder.py).
    metadata_location: str | None = None
    snapshot_id: int | None = None  # the Iceberg table's current snapshot at this version; None when it has none


class DatasetSummary(WireModel):
    """A dataset at its current version. When that version's manifest cannot be read, only `name`, `version` and
    `error` are set; the wire leaves out what is None, so a listing without errors is exactly as it always was."""

    name: str
    version: int
    rows: int | None = None
    bytes: int | None = None
    updated_at: datetime | None = None
    error: str | None = Field(None, description="why the current manifest cannot be read; absent when it can")


class DatasetList(WireModel):
    datasets: list[DatasetSummary]


class VersionSummary(WireModel):
    version: int
    mode: CommitMode
    rows: int
    bytes: int
    created_at: datetime
    snapshot_id: int | None = None  # the Iceberg snapshot this version is (the table's snapshots agree)


class VersionList(WireModel):
    versions: list[VersionSummary]


class CommitRequest(WireModel):
    """`POST /v1/catalog/datasets/{name}/commits`: `files` are the new version's (replace) or the added (append)."""

    mode: CommitMode
    columns: list[Column] = Field(alias="schema", min_length=1)
    files: list[DataFile]
    expected_version: int | None = Field(None, ge=0, description="the version the commit is based on; 409 if stale")
