"""[s3]: the S3-compatible server and bucket storaged's S3 backend uses."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config.base import Section


class S3Config(Section):
    endpoint: str = Field("http://localhost:9000", description="S3-compatible endpoint")
    region: str = Field("us-east-1", description="S3 region")
    bucket: str = Field("lakehouse-primary", description="bucket holding the lakehouse")
    access_key_id: str = Field("", description="S3 access key id")
    secret_access_key: SecretStr = Field(SecretStr(""), description="S3 secret key (never printed)")
    use_path_style: bool = Field(True, description="path-style addressing (MinIO)")
