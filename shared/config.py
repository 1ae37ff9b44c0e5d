"""The lakehouse configuration: one root model over fifteen sections, loaded from arguments, environment and TOML.

Priority, highest first: explicit arguments, `LH_<SECTION>__<KEY>` environment variables, the TOML file, the
defaults. Nested values deep-merge, so an environment override of one key keeps the file's other keys in that section.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shared.sections import (
    AuthConfig,
    CatalogConfig,
    ChatdConfig,
    EmbeddConfig,
    GatewayConfig,
    IngestConfig,
    LogConfig,
    MatrixdConfig,
    ModelsConfig,
    ObserverdConfig,
    PathwaydConfig,
    QuerydConfig,
    S3Config,
    StoragedConfig,
    VectordConfig,
)

ENV_PREFIX = "LH_"
ENV_DELIMITER = "__"
CONFIG_ENV = "LH_CONFIG"
DEFAULT_CONFIG_FILE = "lakehouse.toml"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the source, the key and what was expected."""


SERVICE_SECTIONS = (
    "gateway",
    "storaged",
    "catalogd",
    "ingestd",
    "queryd",
    "vectord",
    "embedd",
    "pathwayd",
    "matrixd",
    "observerd",
    "chatd",
)


class LakehouseConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    storaged: StoragedConfig = Field(default_factory=StoragedConfig)
    catalogd: CatalogConfig = Field(default_factory=CatalogConfig)
    ingestd: IngestConfig = Field(default_factory=IngestConfig)
    queryd: QuerydConfig = Field(default_factory=QuerydConfig)
    vectord: VectordConfig = Field(default_factory=VectordConfig)
    embedd: EmbeddConfig = Field(default_factory=EmbeddConfig)
    pathwayd: PathwaydConfig = Field(default_factory=PathwaydConfig)
    matrixd: MatrixdConfig = Field(default_factory=MatrixdConfig)
    observerd: ObserverdConfig = Field(default_factory=ObserverdConfig)
    chatd: ChatdConfig = Field(default_factory=ChatdConfig)
    s3: S3Config = Field(default_factory=S3Config)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv or secrets dir: the TOML file is added per load by `load_config`.
        return init_settings, env_settings

    def section_bind(self, name: str) -> str:
        bind: str = getattr(self, name).bind
        return bind


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """Which file to read: --config, then LH_CONFIG, then ./lakehouse.toml if it exists, else none."""
    given = explicit or environ.get(CONFIG_ENV)
    if given:
        return Path(given)
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None


def _with_file(data: dict[str, Any]) -> type[LakehouseConfig]:
    class FileBackedConfig(LakehouseConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, InitSettingsSource(settings_cls, data)

    return FileBackedConfig


def _lookup(data: Mapping[str, Any], loc: tuple[str | int, ...]) -> bool:
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            return isinstance(node, list)  # an item of a list the file gave
        if not (isinstance(node, Mapping) and part in node):
            return False
        node = node[part]
    return True


def _describe(exc: ValidationError, path: Path | None, data: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    lines = []
    env_upper = {k.upper() for k in environ}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        keys = [str(p) for p in loc if isinstance(p, str)]
        dotted = ".".join(str(p) for p in loc)
        env_name = ENV_PREFIX + ENV_DELIMITER.join(keys).upper()
        # The environment wins over the file, so a bad value present in both came from the environment.
        if env_name in env_upper:
            where = f"environment {env_name}"
        elif path is not None and _lookup(data, loc):
            where = f"{path}: key {dotted}"
        else:
            where = f"key {dotted}"
        if err["type"] == "extra_forbidden":
            section = ".".join(keys[:-1])
            known = _known_keys(loc[:-1])
            hint = f"; known keys in [{section}]: {', '.join(known)}" if section else ""
            lines.append(f"{where}: unknown key{hint}")
            continue
        if err["type"] == "value_error":
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{where}: {err['msg']}, got {err.get('input')!r}")
    return "\n".join(lines)


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = LakehouseConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def load_config(path: str | None = None, **overrides: Any) -> LakehouseConfig:
    """Load the effective configuration.

    `path` is the `--config` argument (None when not given). `overrides` are explicit section values,
    e.g. `chatd={"bind": "127.0.0.1:0"}`, and win over everything else. Raises ConfigError with a message
    naming the file or variable, the key and what was expected.
    """
    config_file = find_config_file(path, os.environ)
    data: dict[str, Any] = {}
    if config_file is not None:
        if config_file.exists():
            data = _read_toml(config_file)
        else:
            structlog.get_logger("config").warning(
                "config file not found, using defaults",
                path=str(config_file),
                hint="create the file or pass --config /path/to/lakehouse.toml",
            )
            config_file = None
    try:
        loaded = _with_file(data)(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file, data, os.environ)) from None
    # Hand back the plain root type: the per-load subclass only existed to carry the file's data.
    return LakehouseConfig.model_construct(**{name: getattr(loaded, name) for name in LakehouseConfig.model_fields})
