"""The lakehouse configuration: one root model over fifteen sections, loaded from arguments, environment and TOML.

Priority, highest first: explicit arguments, `LH_<SECTION>__<KEY>` environment variables, the TOML file, the
defaults. Nested values deep-merge, so an environment override of one key keeps the file's other keys in that section.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from pydantic import BaseModel, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shared.sections import (
    AuthConfig,
    Bind,
    LogConfig,
    ModelsConfig,
    S3Config,
    Section,
    ServiceSection,
    Url,
)
from shared.topology import GATEWAY, SERVICES, Service

ENV_PREFIX = "LH_"
ENV_DELIMITER = "__"
CONFIG_ENV = "LH_CONFIG"
DEFAULT_CONFIG_FILE = "lakehouse.toml"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the source, the key and what was expected."""


class ConfigRoot(BaseSettings):
    """The settings machinery. The fields, one section per registry row then the common sections, are made by
    `config_model` from shared/topology.py, so the type checker sees a service's section as Any."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    file_data: ClassVar[dict[str, Any]] = {}

    if TYPE_CHECKING:
        s3: S3Config = Field(default_factory=S3Config)
        models: ModelsConfig = Field(default_factory=ModelsConfig)
        log: LogConfig = Field(default_factory=LogConfig)
        auth: AuthConfig = Field(default_factory=AuthConfig)

        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv or secrets dir. The TOML file's data, read per load by `load_config`, ranks below the environment.
        return init_settings, env_settings, InitSettingsSource(settings_cls, cls.file_data)

    def section_bind(self, name: str) -> str:
        bind: str = getattr(self, name).bind
        return bind


COMMON_SECTIONS: dict[str, type[Section]] = {
    "s3": S3Config,
    "models": ModelsConfig,
    "log": LogConfig,
    "auth": AuthConfig,
}


def _section(field_type: type[BaseModel], description: str | None = None) -> tuple[type[BaseModel], Any]:
    return field_type, Field(default_factory=field_type, description=description)


def _timeouts_model(upstreams: Sequence[Service]) -> type[Section]:
    fields: dict[str, Any] = {}
    for s in upstreams:
        help_text = s.timeout_help or f"seconds to wait for {s.name}'s response headers"
        # 0 means "derived" only where the row says how; elsewhere a wait must be positive.
        derived = s.timeout_secs == 0
        field = Field(s.timeout_secs, description=help_text, ge=0 if derived else None, gt=None if derived else 0)
        fields[s.timeout_key] = (float, field)
    return create_model("GatewayTimeouts", __base__=Section, __module__=__name__, **fields)


def _gateway_fields(services: Sequence[Service]) -> dict[str, Any]:
    """Each upstream's URL key and the per-family header timeouts."""
    upstreams = [s for s in services if s.family]
    fields: dict[str, Any] = {
        s.gateway_url_key: (Url, Field(f"http://{s.default_bind}", description=f"upstream of {', '.join(s.routes)}"))
        for s in upstreams
    }
    fields["timeouts"] = _section(_timeouts_model(upstreams), "per-family header timeouts")
    return fields


def _section_model(service: Service, services: Sequence[Service]) -> type[ServiceSection]:
    fields: dict[str, Any] = {
        "bind": (Bind, Field(service.default_bind, description=f"address {service.name} listens on")),
    }
    if service.name == GATEWAY:
        fields |= _gateway_fields(services)
    return create_model(service.section.__name__, __base__=service.section, __module__=__name__, **fields)


@functools.cache
def config_model(services: tuple[Service, ...]) -> type[ConfigRoot]:
    """The root model for these registry rows: a section per service, then the common sections."""
    fields: dict[str, Any] = {s.name: _section(_section_model(s, services)) for s in services}
    fields |= {name: _section(model) for name, model in COMMON_SECTIONS.items()}
    return create_model("LakehouseConfig", __base__=ConfigRoot, __module__=__name__, **fields)


def current_model() -> type[ConfigRoot]:
    """The root model of the registry as it is now (a test may add a row)."""
    return config_model(tuple(SERVICES.values()))


if TYPE_CHECKING:
    LakehouseConfig = ConfigRoot
else:
    LakehouseConfig = current_model()

SERVICE_SECTIONS = tuple(SERVICES)


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


def _with_file(root: type[ConfigRoot], data: dict[str, Any]) -> type[ConfigRoot]:
    return type("FileBackedConfig", (root,), {"file_data": data})


def _lookup(data: Mapping[str, Any], loc: tuple[str | int, ...]) -> bool:
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            return isinstance(node, list)  # an item of a list the file gave
        if not (isinstance(node, Mapping) and part in node):
            return False
        node = node[part]
    return True


def _describe(
    root: type[ConfigRoot], exc: ValidationError, path: Path | None, data: Mapping[str, Any], environ: Mapping[str, str]
) -> str:
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
            known = _known_keys(root, loc[:-1])
            hint = f"; known keys in [{section}]: {', '.join(known)}" if section else ""
            lines.append(f"{where}: unknown key{hint}")
            continue
        if err["type"] == "value_error":
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{where}: {err['msg']}, got {err.get('input')!r}")
    return "\n".join(lines)


def _known_keys(root: type[ConfigRoot], loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = root
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
    root = current_model()
    try:
        loaded = _with_file(root, data)(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(root, exc, config_file, data, os.environ)) from None
    # Hand back the plain root type: the per-load subclass only existed to carry the file's data.
    return root.model_construct(**{name: getattr(loaded, name) for name in root.model_fields})
