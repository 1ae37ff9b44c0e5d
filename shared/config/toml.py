"""Renders the effective configuration as TOML an operator can paste back, with secrets shown as "***"."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "***"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return json.dumps(REDACTED if value.get_secret_value() else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are a subset of TOML basic-string escapes.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):  # a mapping's entry (a [chatd.prices] row): an inline table
        return "{ " + ", ".join(f"{_key(k)} = {_value(getattr(value, k))}" for k in type(value).model_fields) + " }"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _table(name: str, model: BaseModel, out: list[str], comments: bool) -> None:
    nested: list[tuple[str, BaseModel]] = []
    maps: list[tuple[str, str | None, dict[str, Any]]] = []
    out.append(f"[{name}]")
    for key, info in type(model).model_fields.items():
        value = getattr(model, key)
        if isinstance(value, BaseModel):
            nested.append((f"{name}.{key}", value))
            continue
        if isinstance(value, dict):
            # A free-form mapping (e.g. [chatd.fallbacks]) is its own table, after the section's plain keys.
            maps.append((f"{name}.{key}", info.description, value))
            continue
        if comments and info.description:
            out.append(f"# {info.description}")
        out.append(f"{key} = {_value(value)}")
    out.append("")
    for map_name, description, mapping in maps:
        if comments and description:
            out.append(f"# {description}")
        out.append(f"[{map_name}]")
        out.extend(f"{_key(k)} = {_value(v)}" for k, v in mapping.items())
        out.append("")
    for child_name, child in nested:
        _table(child_name, child, out, comments)


def render_toml(config: BaseModel, *, comments: bool = False) -> str:
    """Every section and key of `config`; with `comments`, each key's description above it."""
    out: list[str] = []
    for section in type(config).model_fields:
        _table(section, getattr(config, section), out, comments)
    return "\n".join(out)
