"""Registers each provider that can work: ollama when its URL is set, the others when their key resolves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from services.chatd.keys import resolve_key
from services.chatd.ollama import OllamaChat
from services.chatd.ollama_cloud import OllamaGenerate
from services.chatd.openai_compat import OpenAIChat
from services.chatd.provider import Provider
from services.chatd.registry import Registry
from services.chatd.types import Translator
from shared.sections import ChatdConfig


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    url_key: str
    translator: Callable[[], Translator]
    key_prefix: str = ""  # "<prefix>_key_env" and "<prefix>_key_file" name the key's sources; "" = no key


PROVIDER_SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec("ollama", "ollama_url", OllamaChat),
    ProviderSpec("ollama_cloud", "ollama_cloud_url", OllamaGenerate, "ollama_cloud"),
    ProviderSpec("openrouter", "openrouter_url", OpenAIChat, "openrouter"),
    ProviderSpec("opencode", "opencode_url", OpenAIChat, "opencode"),
    ProviderSpec("kimi", "kimi_url", OpenAIChat, "kimi"),
)


def build_registry(config: ChatdConfig, environ: Mapping[str, str]) -> Registry:
    log = structlog.get_logger("chatd")
    timeout = config.call_timeout_secs
    providers: dict[str, Provider] = {}
    unregistered: dict[str, str] = {}
    for spec in PROVIDER_SPECS:
        url: str = getattr(config, spec.url_key)
        key = ""
        if not url:
            unregistered[spec.name] = f"chatd.{spec.url_key} is empty"
        elif spec.key_prefix:
            env_name: str = getattr(config, f"{spec.key_prefix}_key_env")
            file_path: str = getattr(config, f"{spec.key_prefix}_key_file")
            key = resolve_key(env_name, file_path, environ)
            if not key:
                unregistered[spec.name] = f"no key: set {env_name} or put {env_name}=... in {file_path}"
        if spec.name in unregistered:
            log.info("provider not registered", provider=spec.name, reason=unregistered[spec.name])
            continue
        providers[spec.name] = Provider(
            name=spec.name,
            base_url=url,
            translator=spec.translator(),
            key=key,
            timeout_secs=timeout,
        )
        log.info("provider registered", provider=spec.name, url=url)
    return Registry(providers, unregistered)
