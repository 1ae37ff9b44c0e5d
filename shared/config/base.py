"""What every section is built from: the base models, and the field types with their checks (binds, URLs, durations)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def split_bind(bind: str) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port") into its parts, raising ValueError with the expected form."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'expected "host:port" (e.g. "127.0.0.1:3110"), got "{bind}"')
    return host.removeprefix("[").removesuffix("]"), int(port)


def _check_bind(bind: str) -> str:
    split_bind(bind)
    return bind


def _check_url(url: str) -> str:
    if url and (not url.startswith(("http://", "https://")) or not urlsplit(url).hostname):
        raise ValueError(f'expected an http:// or https:// URL with a host (or "" to disable), got "{url}"')
    return url.rstrip("/")


Bind = Annotated[str, AfterValidator(_check_bind)]


Url = Annotated[str, AfterValidator(_check_url)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServiceSection(Section):
    """A service's section. The registry row (shared/topology.py) gives `bind` its default and description."""

    bind: Bind = Field("127.0.0.1:0", description="address the service listens on")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go-style duration ("30s", "1m30s", "500ms", "2h") in seconds; ValueError naming the expected form."""
    expected = f'expected a positive duration such as "30s", "5m", "1m30s" or "500ms", got "{text}"'
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            raise ValueError(expected)
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        position = match.end()
    if not text or position != len(text) or total <= 0:
        raise ValueError(expected)
    return total


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_check_duration)]
