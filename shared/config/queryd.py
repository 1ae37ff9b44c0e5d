"""[queryd]: the SQL engine's limits and where it reads the catalog."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, Duration, ServiceSection, Url, parse_duration


class QuerydConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3214", description="address queryd listens on")
    catalogd_url: Url = Field("http://127.0.0.1:3212", description="catalogd, read for view registration")
    secrets_path: str = Field("/etc/lakehouse/secrets-go.toml", description="S3 credentials file")
    refresh_every: Duration = Field("30s", description='how often views are refreshed ("30s", "5m", "1m30s")')
    query_timeout_secs: float = Field(60.0, gt=0, description="a query running longer is interrupted (504)")
    memory_limit: str = Field("2GB", min_length=1, description='DuckDB memory_limit ("2GB", "512MB", "80%")')
    threads: int = Field(0, ge=0, le=1024, description="DuckDB worker threads; 0 = one per CPU core")

    @property
    def refresh_every_secs(self) -> float:
        return parse_duration(self.refresh_every)
