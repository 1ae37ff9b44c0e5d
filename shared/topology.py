"""The registry of services: the one place that names a service and says everything the stack derives from it.

A row gives the service's name, its app factory, its config section model, its default port, its gateway family
(a path prefix) and any exact paths, and the gateway's header timeout for it. From the rows come the root config's
sections (shared/config.py), the `[gateway]` upstream URL keys and `[gateway.timeouts]`, the gateway's routes,
`/v1/health`, `lakehouse up` and `lakehouse serve`. Apps are named by "module:factory" strings so that shared/
imports nothing from gateway/ or services/.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.sections import (
    CatalogConfig,
    ChatdConfig,
    EmbeddConfig,
    GatewayConfig,
    IngestConfig,
    MatrixdConfig,
    ObserverdConfig,
    PathwaydConfig,
    QuerydConfig,
    ServiceSection,
    StoragedConfig,
    VectordConfig,
)

FAMILY_PREFIX = "/v1/"
GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Service:
    name: str  # also its config section, its `lakehouse serve` name and its LH_<NAME>__* variables
    factory: str  # "module:callable" taking the LakehouseConfig, returning the ASGI app
    section: type[ServiceSection]  # its config section; `bind` is added from `port`
    port: int  # default bind is 127.0.0.1:<port>
    family: str = ""  # the gateway path prefix, "/v1/<one segment>"; "" for the gateway itself
    exact_paths: tuple[str, ...] = ()  # single paths the gateway also sends here (OpenAI's /v1/models, ...)
    timeout_secs: float = 30.0  # the gateway's default wait for response headers; 0 = derived (timeout_help says how)
    timeout_help: str = ""

    def __post_init__(self) -> None:
        segment = self.family.removeprefix(FAMILY_PREFIX)
        if self.family and (not self.family.startswith(FAMILY_PREFIX) or not segment or "/" in segment):
            raise ValueError(f'{self.name}: family must be "/v1/<segment>", got "{self.family}"')
        if self.exact_paths and not self.family:
            raise ValueError(f"{self.name}: exact paths need a family (they share its upstream and timeout)")
        if self.timeout_secs == 0 and not self.timeout_help:
            raise ValueError(f"{self.name}: a timeout of 0 (derived) needs timeout_help saying how")

    @property
    def default_bind(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def gateway_url_key(self) -> str:
        """The [gateway] key holding this service's upstream URL; "" for the gateway itself."""
        return f"{self.name}_url" if self.family else ""

    @property
    def timeout_key(self) -> str:
        """The [gateway.timeouts] key: the family's segment ("chat" for /v1/chat)."""
        return self.family.removeprefix(FAMILY_PREFIX)

    @property
    def routes(self) -> tuple[str, ...]:
        return (self.family, *self.exact_paths) if self.family else ()


def _factory(name: str) -> str:
    return f"services.{name}.app:create_app"


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(GATEWAY, "gateway.app:create_app", GatewayConfig, 3110),
        Service("storaged", _factory("storaged"), StoragedConfig, 3211, "/v1/storage", timeout_secs=300.0),
        Service("catalogd", _factory("catalogd"), CatalogConfig, 3212, "/v1/catalog", timeout_secs=30.0),
        Service("ingestd", _factory("ingestd"), IngestConfig, 3213, "/v1/ingest", timeout_secs=600.0),
        Service("queryd", _factory("queryd"), QuerydConfig, 3214, "/v1/sql", timeout_secs=300.0),
        Service("vectord", _factory("vectord"), VectordConfig, 3215, "/v1/vectors", timeout_secs=60.0),
        Service("embedd", _factory("embedd"), EmbeddConfig, 3216, "/v1/embed", ("/v1/embeddings",), timeout_secs=60.0),
        Service("pathwayd", _factory("pathwayd"), PathwaydConfig, 3217, "/v1/pathway", timeout_secs=30.0),
        Service("matrixd", _factory("matrixd"), MatrixdConfig, 3218, "/v1/matrix", timeout_secs=60.0),
        Service("observerd", _factory("observerd"), ObserverdConfig, 3219, "/v1/observer", timeout_secs=30.0),
        Service(
            "chatd",
            _factory("chatd"),
            ChatdConfig,
            3220,
            "/v1/chat",
            ("/v1/models",),
            timeout_secs=0.0,
            timeout_help="seconds to wait for chatd; 0 = chatd's timeout_secs plus 10",
        ),
    )
}


def upstreams() -> tuple[Service, ...]:
    """The services the gateway forwards to, read from the registry as it is now."""
    return tuple(s for s in SERVICES.values() if s.family)


# The default registry's upstreams, for tests that parametrize over them.
UPSTREAMS: tuple[Service, ...] = upstreams()
