"""`lakehouse config check --for NAME`: what one service needs on this box, and what to fix when it is missing."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from shared.config import LakehouseConfig
from shared.registry import service as registered
from shared.server.runner import GateRefused, check_gates


def _gate(config: LakehouseConfig, service: str, environ: Mapping[str, str]) -> list[str]:
    try:
        check_gates(service, config, environ)
    except GateRefused as exc:
        return [str(exc)]
    return []


def _urls(config: LakehouseConfig, service: str) -> list[str]:
    section = config.section(service)
    optional = registered(service).optional_urls  # where "" is a documented choice (run without it), not a gap
    return [
        f"{service}: {service}.{key} is empty; set it to the URL of that service (LH_{service.upper()}__{key.upper()})"
        for key in type(section).model_fields
        if key.endswith("_url") and not getattr(section, key) and key not in optional
    ]


def _directories(config: LakehouseConfig, service: str) -> list[str]:
    section = config.section(service)
    problems = []
    for writable in registered(service).writable:
        key = writable.key
        value = str(getattr(section, key) or "")
        if not value:
            continue
        directory = Path(str(PurePosixPath(value).parent) if writable.is_file else value)
        if writable.made:
            while not directory.exists() and directory != directory.parent:
                directory = directory.parent  # what must be writable is where the service will make it
        if not directory.is_dir():
            problems.append(f"{service}: directory {directory} ({service}.{key}) does not exist; create it")
        elif not os.access(directory, os.W_OK | os.X_OK):
            problems.append(f"{service}: directory {directory} ({service}.{key}) is not writable by this user")
    return problems


def _unreadable(path: Path) -> str | None:
    """Why chatd could not read the key file at `path`, or None when it can (or the file is simply absent)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except PermissionError:
        return "is not readable by this user (a directory on its path cannot be searched); fix its owner or mode"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory, not a KEY=value file; remove it or point the key file setting at a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file; point the key file setting at a KEY=value file"
    # An open, not os.access: it is what chatd will do, and it answers for the effective user and any ACLs.
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        return "is not readable by this user; fix its owner or mode"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _key_files(config: LakehouseConfig, service: str, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    for key in registered(service).key_files(config.section(service)):
        path = Path(key.path or "/nonexistent")
        if environ.get(key.env):
            continue
        # The service treats an unreadable file like a missing one (provider off); here only absence is a choice.
        why = _unreadable(path)
        if why is not None:
            problems.append(f"{service}: key file {path} ({key.name}) {why}")
        elif not path.is_file():
            notes.append(f"{service}: {key.name} will not be registered: set {key.env} or create {path}")
    return problems, notes


def check_service(config: LakehouseConfig, service: str, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(problems, notes): a problem stops the service from working; a note is a choice it will make."""
    problems = _gate(config, service, environ) + _urls(config, service) + _directories(config, service)
    key_problems, notes = _key_files(config, service, environ)
    return problems + key_problems, notes
