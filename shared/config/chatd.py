"""[chatd]: the providers' URLs and keys, the time budget, fallbacks.

PROVIDERS is the one table of chatd's providers. From it come the section's `<name>_url`, `<name>_key_env` and
`<name>_key_file` keys (below), chatd's routing and registry (services/chatd/routing.py, builder.py), the key files
in its systemd unit and `config check --for chatd` (its registry row), and the provider table of docs/chatd.md
(a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, create_model

from shared.config.base import Bind, Section, ServiceSection, Url

Wire = Literal["ollama_chat", "ollama_generate", "openai"]


@dataclass(frozen=True, slots=True)
class ProviderRow:
    name: str
    label: str  # how people call it, for the config's descriptions
    wire: Wire  # the API it speaks: Ollama's /api/chat, Ollama's /api/generate, OpenAI's /chat/completions
    url: str  # the default of `<name>_url`
    prefix: str  # a model "<prefix><m>" goes to this provider as "<m>"
    suffix: str = ""  # a model "<m><suffix>" goes here too, as "<m>"
    key_env: str = ""  # the default of `<name>_key_env`; "" = the provider needs no key

    @property
    def url_key(self) -> str:
        return f"{self.name}_url"

    @property
    def key_env_key(self) -> str:
        return f"{self.name}_key_env"

    @property
    def key_file_key(self) -> str:
        return f"{self.name}_key_file"


# Routing goes down this table, each provider's prefix then its suffix: the order is the contract. The first row is
# the default provider, which also takes every model no rule matches.
PROVIDERS: tuple[ProviderRow, ...] = (
    ProviderRow("ollama", "local Ollama", "ollama_chat", "http://localhost:11434", "ollama/"),
    ProviderRow(
        "ollama_cloud",
        "Ollama Cloud",
        "ollama_generate",
        "https://ollama.com",
        "ollama_cloud/",
        ":cloud",
        "OLLAMA_CLOUD_KEY",
    ),
    ProviderRow(
        "openrouter",
        "OpenRouter",
        "openai",
        "https://openrouter.ai/api/v1",
        "openrouter/",
        key_env="OPENROUTER_API_KEY",
    ),
    ProviderRow(
        "opencode", "OpenCode Zen", "openai", "https://opencode.ai/zen/v1", "opencode/", key_env="OPENCODE_API_KEY"
    ),
    ProviderRow("kimi", "Kimi For Coding", "openai", "https://api.kimi.com/coding/v1", "kimi/", key_env="KIMI_API_KEY"),
)
DEFAULT_PROVIDER = PROVIDERS[0].name
KEY_FILE_DIR = "/etc/lakehouse"


class Price(Section):
    """What a model costs, in USD per million tokens."""

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)


# List prices (USD per million tokens, December 2026) of the paid models the [models] defaults name, as the routed
# model strings chatd reports; a model not listed costs 0 (local ones, and flat-rate plans such as Ollama Cloud).
DEFAULT_PRICES: dict[str, Price] = {
    "openrouter/anthropic/claude-opus-4-7": Price(input=5.0, output=25.0),
    "openrouter/moonshotai/kimi-k2-0905": Price(input=0.6, output=2.5),
    "openrouter/openai/gpt-5": Price(input=1.25, output=10.0),
    "opencode/claude-opus-4-7": Price(input=5.0, output=25.0),
}


class ChatdSettings(ServiceSection):
    """chatd's own keys; the providers' keys are added from PROVIDERS to make ChatdConfig."""

    bind: Bind = Field("127.0.0.1:3220", description="address chatd listens on")
    timeout_secs: int = Field(180, ge=0, description="budget for one request, shared by its fallback chain; 0 = 180")
    attempt_timeout_secs: float = Field(
        0.0, ge=0, description="most one candidate of a fallback chain may take; 0 = whatever budget is left"
    )
    max_request_bytes: int = Field(8 << 20, gt=0, description="largest accepted JSON request body, in bytes")
    fallbacks: dict[Annotated[str, Field(min_length=1)], list[Annotated[str, Field(min_length=1)]]] = Field(
        default_factory=dict,
        description="model or tier (as the request names it) -> models or tiers tried next, in order",
    )

    prices: dict[Annotated[str, Field(min_length=1)], Price] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="routed model (provider/model) -> USD per million tokens, input and output; unlisted costs 0",
    )
    ledger_dir: str = Field(
        "lakehouse-data/ledger",
        description="the spend ledger's spool and the keys' token and budget meters (kept across restarts)",
    )
    storaged_url: Url = Field(
        "http://127.0.0.1:3211", description='storaged, where the ledger\'s Parquet goes; "" = keep it spooled here'
    )
    catalogd_url: Url = Field(
        "http://127.0.0.1:3212", description='catalogd, where the ledger is the dataset "spend"; "" = spooled here'
    )
    ledger_ship_secs: float = Field(
        20.0, gt=0, le=3600, description="seconds between ledger appends to the spend dataset (its freshness)"
    )
    ledger_compact_files: int = Field(
        32, ge=2, description="small files the spend dataset may have before they are merged into one"
    )

    @property
    def call_timeout_secs(self) -> float:
        """timeout_secs with the seed's rule applied: 0 means 180."""
        return float(self.timeout_secs or 180)

    def provider_url(self, provider: ProviderRow) -> str:
        url: str = getattr(self, provider.url_key)
        return url

    def key_source(self, provider: ProviderRow) -> tuple[str, str]:
        """(environment variable, .env file) where `provider`'s key is looked for; ("", "") for a keyless one."""
        if not provider.key_env:
            return "", ""
        return getattr(self, provider.key_env_key), getattr(self, provider.key_file_key)


def _provider_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for p in PROVIDERS:
        hint = ' "" = not registered' if p.name == DEFAULT_PROVIDER else ""
        fields[p.url_key] = (Url, Field(p.url, description=f"{p.label} API base;{hint}".rstrip(";")))
    for p in PROVIDERS:
        if p.key_env:
            fields[p.key_env_key] = (str, Field(p.key_env, description=f"env var holding the {p.label} key"))
    for p in PROVIDERS:
        if p.key_env:
            path = f"{KEY_FILE_DIR}/{p.name}.env"
            fields[p.key_file_key] = (str, Field(path, description=".env fallback file"))
    return fields


if TYPE_CHECKING:
    ChatdConfig = ChatdSettings  # the provider keys are read through provider_url() and key_source()
else:
    ChatdConfig = create_model("ChatdConfig", __base__=ChatdSettings, __module__=__name__, **_provider_fields())
