"""chatd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.chatd import PROVIDERS, ChatdConfig
from shared.registry import KeyFile, Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.chatd.app import create_app

    return create_app(config)


def key_files(section: ChatdConfig) -> Sequence[KeyFile]:
    """Each keyed provider's key: its environment variable, else its .env file (systemd loads the file too)."""
    sources = ((p.name, *section.key_source(p)) for p in PROVIDERS if p.key_env)
    return [KeyFile(name, env, path) for name, env, path in sources]


SERVICE = Service(
    "chatd",
    ChatdConfig,
    create_app,
    family="/v1/chat",
    scopes=("chat", "chat"),
    exact_paths=("/v1/models",),
    timeout_secs=0.0,
    timeout_help="seconds to wait for chatd; 0 = chatd's timeout_secs plus 10",
    writable=(Writable("ledger_dir", made=True),),
    optional_urls=frozenset({"ollama_url", "storaged_url", "catalogd_url"}),
    key_files=key_files,
)
