"""[catalogd]: the storaged that keeps the catalog."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class CatalogConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3212", description="address catalogd listens on")
    storaged_url: Url = Field("http://127.0.0.1:3211", description="storaged, where manifests are persisted")
    warehouse: str = Field(
        "s3://warehouse",
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="where Iceberg tables outside namespace lakehouse live (s3://<bucket>[/<prefix>] of the S3 API)",
    )
    s3_endpoint: str = Field(
        "",
        description='the S3 endpoint the Iceberg catalog tells engines (s3.endpoint); "" = the gateway\'s bind address',
    )
