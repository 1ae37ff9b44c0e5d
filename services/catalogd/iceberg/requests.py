"""The REST catalog's request bodies as the spec writes them: optional fields optional (pyiceberg's own client-side
models require some the spec leaves out, e.g. a create's `location`), Iceberg's types parsed by pyiceberg."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import TableRequirement, TableUpdate


class SpecModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class CreateTable(SpecModel):
    name: str
    location: str | None = None
    table_schema: Schema = Field(alias="schema")
    partition_spec: PartitionSpec | None = Field(None, alias="partition-spec")
    write_order: SortOrder | None = Field(None, alias="write-order")
    stage_create: bool = Field(False, alias="stage-create")
    properties: dict[str, str] = Field(default_factory=dict)


class CommitTable(SpecModel):
    identifier: dict[str, object] | None = None
    requirements: list[TableRequirement] = Field(default_factory=list)
    updates: list[TableUpdate] = Field(default_factory=list)


class RegisterTable(SpecModel):
    name: str
    metadata_location: str = Field(alias="metadata-location")
    overwrite: bool = False


class CreateNamespace(SpecModel):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateProperties(SpecModel):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class TableIdentifier(SpecModel):
    namespace: list[str]
    name: str


class RenameTable(SpecModel):
    source: TableIdentifier
    destination: TableIdentifier
