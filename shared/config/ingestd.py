"""[ingestd]: where uploads go and how they are written as Parquet."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class IngestConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3213", description="address ingestd listens on")
    storaged_url: Url = Field("http://127.0.0.1:3211", description="storaged, where Parquet is PUT")
    catalogd_url: Url = Field("http://127.0.0.1:3212", description="catalogd, where datasets are registered")
    max_ingest_bytes: int = Field(256 << 20, gt=0, description="largest accepted upload body, in bytes (413 past it)")
    temp_dir: str = Field("", description='where uploads are spooled and Parquet parts written; "" = the system temp')
    row_group_rows: int = Field(131_072, gt=0, description="rows per Parquet row group")
    target_file_bytes: int = Field(128 << 20, gt=0, description="a new Parquet file is started past this size")
