"""The sections of the lakehouse configuration, one model each, with the Go original's keys and defaults."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator


def split_bind(bind: str) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port") into its parts, raising ValueError with the expected form."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'expected "host:port" (e.g. "127.0.0.1:3110"), got "{bind}"')
    return host.removeprefix("[").removesuffix("]"), int(port)


def _check_bind(bind: str) -> str:
    split_bind(bind)
    return bind


def _check_url(url: str) -> str:
    if url and (not url.startswith(("http://", "https://")) or not urlsplit(url).hostname):
        raise ValueError(f'expected an http:// or https:// URL with a host (or "" to disable), got "{url}"')
    return url.rstrip("/")


Bind = Annotated[str, AfterValidator(_check_bind)]
Url = Annotated[str, AfterValidator(_check_url)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServiceSection(Section):
    """A service's section. The registry row (shared/topology.py) gives `bind` its default and description."""

    bind: Bind = Field("127.0.0.1:0", description="address the service listens on")


class GatewayConfig(ServiceSection):
    """The gateway's own keys; each upstream's `<name>_url` and `[gateway.timeouts]` come from the registry."""

    workers: int = Field(0, ge=0, le=256, description="gateway processes sharing the port; 0 = one per CPU core")
    upstream_max_connections: int = Field(
        256, ge=1, le=65536, description="open connections to each upstream per gateway process; more requests queue"
    )
    # The server limits below apply to every server the runner starts; services add FORWARDING_HEADROOM to the
    # header caps so that a request the gateway accepted is never refused by the service behind it.
    max_header_bytes: int = Field(
        64 << 10, ge=1024, description="request line and headers together, in bytes; beyond: 431 headers_too_large"
    )
    max_header_count: int = Field(100, ge=8, description="request header fields; beyond: 431 headers_too_large")
    header_timeout_secs: float = Field(
        10.0, gt=0, description="seconds to receive a request's headers (from accept or the previous response); 408"
    )
    keepalive_timeout_secs: float = Field(5.0, gt=0, description="seconds an idle kept-alive connection stays open")
    max_connections: int = Field(
        2048, ge=1, description="open connections per process; beyond: 503 service_unavailable and close"
    )


class ServiceConfig(ServiceSection):
    """A stub's section: nothing but the bind."""


class StoragedConfig(ServiceSection):
    backend: Literal["local", "s3"] = Field("local", description='where objects live: "local" (root) or "s3" ([s3])')
    root: str = Field("lakehouse-data/objects", description="local backend's directory (relative to the cwd)")
    max_put_bytes: int = Field(256 << 20, gt=0, description="largest object a PUT may store, in bytes")


class CatalogConfig(ServiceSection):
    storaged_url: Url = Field("http://127.0.0.1:3211", description="storaged, where manifests are persisted")


class IngestConfig(ServiceSection):
    storaged_url: Url = Field("http://127.0.0.1:3211", description="storaged, where Parquet is PUT")
    catalogd_url: Url = Field("http://127.0.0.1:3212", description="catalogd, where datasets are registered")
    max_ingest_bytes: int = Field(256 << 20, gt=0, description="largest accepted upload body, in bytes (413 past it)")
    temp_dir: str = Field("", description='where uploads are spooled and Parquet parts written; "" = the system temp')
    row_group_rows: int = Field(131_072, gt=0, description="rows per Parquet row group")
    target_file_bytes: int = Field(128 << 20, gt=0, description="a new Parquet file is started past this size")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go-style duration ("30s", "1m30s", "500ms", "2h") in seconds; ValueError naming the expected form."""
    expected = f'expected a positive duration such as "30s", "5m", "1m30s" or "500ms", got "{text}"'
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            raise ValueError(expected)
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        position = match.end()
    if not text or position != len(text) or total <= 0:
        raise ValueError(expected)
    return total


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_check_duration)]


class QuerydConfig(ServiceSection):
    catalogd_url: Url = Field("http://127.0.0.1:3212", description="catalogd, read for view registration")
    secrets_path: str = Field("/etc/lakehouse/secrets-go.toml", description="S3 credentials file")
    refresh_every: Duration = Field("30s", description='how often views are refreshed ("30s", "5m", "1m30s")')
    query_timeout_secs: float = Field(60.0, gt=0, description="a query running longer is interrupted (504)")
    memory_limit: str = Field("2GB", min_length=1, description='DuckDB memory_limit ("2GB", "512MB", "80%")')
    threads: int = Field(0, ge=0, le=1024, description="DuckDB worker threads; 0 = one per CPU core")

    @property
    def refresh_every_secs(self) -> float:
        return parse_duration(self.refresh_every)


class VectordConfig(ServiceSection):
    storaged_url: Url = Field("http://127.0.0.1:3211", description='storaged for index persistence; "" = none')
    snapshot_bytes: int = Field(
        64 << 20, gt=0, description="log bytes written since the last snapshot that trigger the next one"
    )


class EmbeddConfig(ServiceSection):
    provider_url: Url = Field("http://localhost:11434", description="embedding backend (Ollama)")
    default_model: str = Field("nomic-embed-text", description="model used when a request names none")
    cache_size: int = Field(10_000, ge=0, description="LRU cache entries; 0 disables caching")
    timeout_secs: float = Field(30.0, gt=0, description="seconds to wait for the Ollama at provider_url")


class PathwaydConfig(ServiceSection):
    persist_path: str = Field("", description='JSONL log path; "" = in-memory only')
    max_record_bytes: int = Field(1 << 20, ge=1024, description="largest trace as stored, in bytes (bigger: 400)")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="largest request body, in bytes (bigger: 413)")


class MatrixdConfig(ServiceSection):
    embedd_url: Url = Field("http://127.0.0.1:3216", description="embedd, for query text")
    vectord_url: Url = Field("http://127.0.0.1:3215", description="vectord, searched per corpus")


class ObserverdConfig(ServiceSection):
    persist_path: str = Field("", description='JSONL ops log path; "" = in-memory only')
    max_record_bytes: int = Field(1 << 20, ge=1024, description="largest op as stored, in bytes (bigger: 400)")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="largest request body (a batch), in bytes (bigger: 413)")


class ChatdConfig(ServiceSection):
    ollama_url: Url = Field("http://localhost:11434", description='local Ollama; "" = not registered')
    ollama_cloud_url: Url = Field("https://ollama.com", description="Ollama Cloud API base")
    openrouter_url: Url = Field("https://openrouter.ai/api/v1", description="OpenRouter API base")
    opencode_url: Url = Field("https://opencode.ai/zen/v1", description="OpenCode Zen API base")
    kimi_url: Url = Field("https://api.kimi.com/coding/v1", description="Kimi For Coding API base")
    ollama_cloud_key_env: str = Field("OLLAMA_CLOUD_KEY", description="env var holding the Ollama Cloud key")
    openrouter_key_env: str = Field("OPENROUTER_API_KEY", description="env var holding the OpenRouter key")
    opencode_key_env: str = Field("OPENCODE_API_KEY", description="env var holding the OpenCode key")
    kimi_key_env: str = Field("KIMI_API_KEY", description="env var holding the Kimi key")
    ollama_cloud_key_file: str = Field("/etc/lakehouse/ollama_cloud.env", description=".env fallback file")
    openrouter_key_file: str = Field("/etc/lakehouse/openrouter.env", description=".env fallback file")
    opencode_key_file: str = Field("/etc/lakehouse/opencode.env", description=".env fallback file")
    kimi_key_file: str = Field("/etc/lakehouse/kimi.env", description=".env fallback file")
    timeout_secs: int = Field(180, ge=0, description="budget for one request, shared by its fallback chain; 0 = 180")
    attempt_timeout_secs: float = Field(
        0.0, ge=0, description="most one candidate of a fallback chain may take; 0 = whatever budget is left"
    )
    max_request_bytes: int = Field(8 << 20, gt=0, description="largest accepted JSON request body, in bytes")
    fallbacks: dict[Annotated[str, Field(min_length=1)], list[Annotated[str, Field(min_length=1)]]] = Field(
        default_factory=dict,
        description="model or tier (as the request names it) -> models or tiers tried next, in order",
    )

    @property
    def call_timeout_secs(self) -> float:
        """timeout_secs with the seed's rule applied: 0 means 180."""
        return float(self.timeout_secs or 180)


class S3Config(Section):
    endpoint: str = Field("http://localhost:9000", description="S3-compatible endpoint")
    region: str = Field("us-east-1", description="S3 region")
    bucket: str = Field("lakehouse-primary", description="bucket holding the lakehouse")
    access_key_id: str = Field("", description="S3 access key id")
    secret_access_key: SecretStr = Field(SecretStr(""), description="S3 secret key (never printed)")
    use_path_style: bool = Field(True, description="path-style addressing (MinIO)")


TIERS = (
    "local_fast",
    "local_embed",
    "local_judge",
    "local_review",
    "cloud_judge",
    "cloud_review",
    "cloud_strong",
    "frontier_review",
    "frontier_arch",
    "frontier_strong",
    "frontier_free",
)


class ModelsConfig(Section):
    local_fast: str = Field("qwen3.5:latest", description="tier 1: local hot path")
    local_embed: str = Field("nomic-embed-text", description="tier 1: local embeddings")
    local_judge: str = Field("qwen3.5:latest", description="tier 1: local judge")
    local_review: str = Field("qwen3.5:latest", description="tier 1: local review")
    cloud_judge: str = Field("kimi-k2.6:cloud", description="tier 2: Ollama Cloud judge")
    cloud_review: str = Field("qwen3-coder:480b", description="tier 2: Ollama Cloud review")
    cloud_strong: str = Field("deepseek-v3.2", description="tier 2: Ollama Cloud strong")
    frontier_review: str = Field("openrouter/anthropic/claude-opus-4-7", description="tier 3: review")
    frontier_arch: str = Field("openrouter/moonshotai/kimi-k2-0905", description="tier 3: architecture")
    frontier_strong: str = Field("openrouter/openai/gpt-5", description="tier 3: strongest")
    frontier_free: str = Field("opencode/claude-opus-4-7", description="tier 3: OpenCode")
    weak_models: list[str] = Field(
        default_factory=lambda: ["qwen3.5:latest", "qwen3:latest"],
        description="models eligible for the local hot path (bypass the downgrade gate)",
    )

    def resolve(self, tier: str) -> str:
        """The model id configured for `tier`, or "" for an unknown tier."""
        if tier not in TIERS:
            return ""
        value: str = getattr(self, tier)
        return value

    def is_weak(self, model: str) -> bool:
        return model in self.weak_models


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def _check_networks(entries: list[str]) -> list[str]:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f'expected a CIDR (e.g. "10.0.0.0/8") or a bare IPv4/IPv6 address, got "{entry}"'
            ) from None
    return entries


class AuthConfig(Section):
    token: SecretStr = Field(SecretStr(""), description='Bearer token every request must carry; "" = none')
    allowed_ips: Annotated[list[str], AfterValidator(_check_networks)] = Field(
        default_factory=list, description="CIDRs or bare IPs allowed to connect; empty = any"
    )
