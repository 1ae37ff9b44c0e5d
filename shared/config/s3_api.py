"""[s3_api]: the S3 API storaged serves (and the gateway forwards): the key pair S3 clients sign with, its region."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config.base import Section


class S3ApiConfig(Section):
    access_key_id: str = Field("", description='access key id S3 clients sign with; "" = the S3 API refuses all')
    secret_access_key: SecretStr = Field(SecretStr(""), description="its secret access key (never printed)")
    region: str = Field("us-east-1", description="the region clients sign for and GetBucketLocation names")
    upload_expiry_hours: float = Field(
        24.0, ge=0, description="an uncompleted multipart upload is deleted, parts and all, this old; 0 = never"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key.get_secret_value())


def describe_s3_api(*, enabled: bool, endpoint: str, region: str) -> str:
    """The line `lakehouse up` and `lakehouse status` print about the S3 API (never a key)."""
    if enabled:
        return f"S3 API: on at {endpoint} (path-style, region {region})"
    return (
        "S3 API: off (set LH_S3_API__ACCESS_KEY_ID and LH_S3_API__SECRET_ACCESS_KEY to turn it on, "
        "or LH_AUTH__MASTER_KEY for client keys to sign with)"
    )
