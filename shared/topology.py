"""Which services exist, where their apps are built, and which gateway family each one serves.

Apps are named by "module:factory" strings so that shared/ imports nothing from gateway/ or services/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    factory: str
    family: str  # the gateway path prefix; "" for the gateway itself
    gateway_url_key: str  # the [gateway] key holding this service's upstream URL
    exact_paths: tuple[str, ...] = ()  # single paths the gateway also sends here (OpenAI's /v1/models, ...)


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("gateway", "gateway.app:create_app", "", ""),
        Service("storaged", "services.storaged.app:create_app", "/v1/storage", "storaged_url"),
        Service("catalogd", "services.catalogd.app:create_app", "/v1/catalog", "catalogd_url"),
        Service("ingestd", "services.ingestd.app:create_app", "/v1/ingest", "ingestd_url"),
        Service("queryd", "services.queryd.app:create_app", "/v1/sql", "queryd_url"),
        Service("vectord", "services.vectord.app:create_app", "/v1/vectors", "vectord_url"),
        Service("embedd", "services.embedd.app:create_app", "/v1/embed", "embedd_url", ("/v1/embeddings",)),
        Service("pathwayd", "services.pathwayd.app:create_app", "/v1/pathway", "pathwayd_url"),
        Service("matrixd", "services.matrixd.app:create_app", "/v1/matrix", "matrixd_url"),
        Service("observerd", "services.observerd.app:create_app", "/v1/observer", "observerd_url"),
        Service("chatd", "services.chatd.app:create_app", "/v1/chat", "chatd_url", ("/v1/models",)),
    )
}

UPSTREAMS: tuple[Service, ...] = tuple(s for s in SERVICES.values() if s.family)
