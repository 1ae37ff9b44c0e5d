"""Provider keys: the environment variable named in config first, then the .env file named in config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=value lines; blank lines, # comments, `export ` prefixes and matching quotes are tolerated."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def resolve_key(env_name: str, file_path: str, environ: Mapping[str, str]) -> str:
    """The key, or "" when neither the environment nor a readable file has it."""
    if env_name and environ.get(env_name):
        return environ[env_name]
    if not (env_name and file_path):
        return ""
    try:
        return read_env_file(Path(file_path)).get(env_name, "")
    except (OSError, UnicodeDecodeError):
        # A missing or unreadable file means "no key": the provider stays unregistered and says so in the log.
        return ""
