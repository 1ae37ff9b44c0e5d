"""[gateway]: the gateway's own keys; each upstream's `<name>_url` and `[gateway.timeouts]` come from the registry."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection


class GatewayConfig(ServiceSection):
    """The gateway's own keys; each upstream's `<name>_url` and `[gateway.timeouts]` come from the registry."""

    bind: Bind = Field("127.0.0.1:3110", description="address gateway listens on")

    state_dir: str = Field(
        "lakehouse-data/gateway",
        description="where the client keys' request meters live (shared by the workers, kept across restarts)",
    )
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

    # Each upstream's `<name>_url` and the `timeouts` table are fields the loader adds from the registry's rows, so
    # they are read by name.
    def upstream_url(self, service: str) -> str:
        """The URL the gateway forwards `service`'s family to; "" when it is turned off."""
        url: str = getattr(self, f"{service}_url")
        return url

    def timeout(self, key: str) -> float:
        """`[gateway.timeouts] <key>`: seconds to wait for the response headers of that family."""
        seconds: float = getattr(self.timeouts, key)  # type: ignore[attr-defined]
        return seconds
