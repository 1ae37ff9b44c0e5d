"""Registers each provider that can work: ollama when its URL is set, the others when their key resolves."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from services.chatd.keys import resolve_key
from services.chatd.ollama import OllamaChat
from services.chatd.ollama_cloud import OllamaGenerate
from services.chatd.openai_compat import OpenAIChat
from services.chatd.provider import Provider
from services.chatd.registry import Registry
from services.chatd.types import Translator
from shared.config.chatd import PROVIDERS, ChatdConfig, Wire

# The API each provider speaks (the `wire` column of shared/config/chatd.py's PROVIDERS) and its translator.
TRANSLATORS: dict[Wire, Callable[[], Translator]] = {
    "ollama_chat": OllamaChat,
    "ollama_generate": OllamaGenerate,
    "openai": OpenAIChat,
}


def build_registry(config: ChatdConfig, environ: Mapping[str, str]) -> Registry:
    log = structlog.get_logger("chatd")
    timeout = config.call_timeout_secs
    providers: dict[str, Provider] = {}
    unregistered: dict[str, str] = {}
    for spec in PROVIDERS:
        url = config.provider_url(spec)
        key = ""
        if not url:
            unregistered[spec.name] = f"chatd.{spec.url_key} is empty"
        elif spec.key_env:
            env_name, file_path = config.key_source(spec)
            key = resolve_key(env_name, file_path, environ)
            if not key:
                unregistered[spec.name] = f"no key: set {env_name} or put {env_name}=... in {file_path}"
        if spec.name in unregistered:
            log.info("provider not registered", provider=spec.name, reason=unregistered[spec.name])
            continue
        providers[spec.name] = Provider(
            name=spec.name,
            base_url=url,
            translator=TRANSLATORS[spec.wire](),
            key=key,
            timeout_secs=timeout,
        )
        log.info("provider registered", provider=spec.name, url=url)
    return Registry(providers, unregistered)
