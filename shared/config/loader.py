"""Loading the lakehouse configuration (the model is shared/config/root.py, completed from the registry's rows) from
arguments, environment and TOML.

Priority, highest first: explicit arguments, `LH_<SECTION>__<KEY>` environment variables, the TOML file, the
defaults. Nested values deep-merge, so an environment override of one key keeps the file's other keys in that section.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field, SecretStr, ValidationError, create_model
from pydantic_settings.exceptions import SettingsError

from shared.config.base import Section, Url
from shared.config.root import ENV_DELIMITER, ENV_PREFIX, LakehouseConfig
from shared.registry import Service, services

CONFIG_ENV = "LH_CONFIG"
DEFAULT_CONFIG_FILE = "lakehouse.toml"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the source, the key and what was expected."""


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


def _gateway_model(gateway: Service, rows: Sequence[Service]) -> type[BaseModel]:
    """The gateway's section with each upstream's URL key and the per-family header timeouts, from the rows."""
    upstreams = [s for s in rows if s.family]
    fields: dict[str, Any] = {
        s.gateway_url_key: (Url, Field(f"http://{s.default_bind}", description=f"upstream of {', '.join(s.routes)}"))
        for s in upstreams
    }
    fields["timeouts"] = _section(_timeouts_model(upstreams), "per-family header timeouts")
    return create_model(
        gateway.section.__name__, __base__=gateway.section, __module__=gateway.section.__module__, **fields
    )


@functools.cache
def config_model(rows: tuple[Service, ...]) -> type[LakehouseConfig]:
    """The root model for these registry rows: LakehouseConfig, its gateway section given the upstreams' keys, and a
    section for each row LakehouseConfig does not spell out (a service added by its row alone)."""
    fields: dict[str, Any] = {}
    for row in rows:
        if row.front_door:
            fields[row.name] = _section(_gateway_model(row, rows))
        elif row.name not in LakehouseConfig.model_fields:
            fields[row.name] = _section(row.section)
    return create_model("LakehouseConfig", __base__=LakehouseConfig, __module__=__name__, **fields)


def current_model() -> type[LakehouseConfig]:
    """The root model of the registry as it is now."""
    return config_model(services())


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


def _with_file(root: type[LakehouseConfig], data: dict[str, Any]) -> type[LakehouseConfig]:
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
    root: type[LakehouseConfig],
    exc: ValidationError,
    path: Path | None,
    data: Mapping[str, Any],
    environ: Mapping[str, str],
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
        if _field_annotation(loc) is SecretStr:
            # Never echo what was given for a secret, not even a wrongly typed one.
            lines.append(f"{where}: {err['msg']}, got a value of type {type(err.get('input')).__name__} (not shown)")
        elif err["type"] == "value_error":
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{where}: {err['msg']}, got {err.get('input')!r}")
    return "\n".join(lines)


def _known_keys(root: type[LakehouseConfig], loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = root
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _field_annotation(loc: tuple[str | int, ...]) -> Any:
    """The annotation of the config field at `loc`, or None when `loc` names no field."""
    annotation: Any = current_model()
    for part in loc:
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        field = annotation.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
    return annotation


def _describe_env_json(environ: Mapping[str, str]) -> str:
    """Which LH_ variables hold a value that is not the JSON their key expects (lists, tables)."""
    lines = []
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        keys = tuple(name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
        annotation = _field_annotation(keys)
        if annotation is None or annotation in (str, int, float, bool, SecretStr) or len(keys) < 2:
            continue
        try:
            json.loads(value)
        except ValueError:
            kind, example = ("list", '["a", "b"]') if "list" in str(annotation) else ("object", '{"key": 1}')
            lines.append(f"environment {name.upper()}: expected a JSON {kind}, e.g. '{example}', got {value!r}")
    return "\n".join(lines)


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
    except SettingsError as exc:
        # pydantic-settings names only the section; find the variable, and never print a traceback.
        raise ConfigError(_describe_env_json(os.environ) or f"environment: {exc}") from None
    # Hand back the plain root type: the per-load subclass only existed to carry the file's data.
    return root.model_construct(**{name: getattr(loaded, name) for name in root.model_fields})
