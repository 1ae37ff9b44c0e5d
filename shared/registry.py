"""The registry of services: one row per service, declared by the service itself and found through the
`lakehouse.services` entry points (pyproject.toml), the way pytest finds its plugins.

A row says everything the stack derives from a service: its name, its config section model (whose `bind` default
gives the port), its gateway family (a path prefix) and exact paths, the gateway's header timeout for it, its app
factory, where it writes and which of its URL keys may be empty. From the rows come the gateway's upstream URL keys
and `[gateway.timeouts]` (shared/config/loader.py), the gateway's routes, `/v1/health`, `lakehouse up` and
`lakehouse serve`, the systemd units, `config check --for` and the docs index check.

Nothing here names a service: a new one is a row in its own package and a line under the entry point group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from shared.config.base import ServiceSection
    from shared.config.root import LakehouseConfig

ENTRY_POINT_GROUP = "lakehouse.services"
FAMILY_PREFIX = "/v1/"


@dataclass(frozen=True, slots=True)
class Writable:
    """A config key naming where a service writes: a directory, or a file whose directory it writes in."""

    key: str
    is_file: bool = False
    made: bool = False  # the service makes the directory itself (its parents too): it need not exist yet


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A secret a service reads from the environment variable `env`, or else from the `.env` file at `path`."""

    name: str  # what the key is for (a provider's name)
    env: str
    path: str


@dataclass(frozen=True, slots=True)
class Service:
    name: str  # also its config section, its `lakehouse serve` name and its LH_<NAME>__* variables
    section: type[ServiceSection]  # its config section; the default of its `bind` is the service's default address
    app: Callable[[LakehouseConfig], ASGIApp]  # the app factory
    family: str = ""  # the gateway path prefix, "/v1/<one segment>"; "" for the gateway itself
    exact_paths: tuple[str, ...] = ()  # single paths the gateway also sends here (OpenAI's /v1/models, ...)
    more_families: tuple[str, ...] = ()  # further prefixes it serves, on the family's pool (catalogd's /v1/iceberg)
    # The scopes a client key needs here (shared/keys/scopes.py): (to read, to write); reading is GET and HEAD, and a
    # POST whose path ends in one of `reads_by_post` (a vector query).
    scopes: tuple[str, str] = ("", "")
    reads_by_post: tuple[str, ...] = ()
    serves_s3: bool = False  # the gateway sends it S3 requests (shared/s3/requests.py): storaged, exactly one
    # The path under which the next segment is a bucket, for keys limited to buckets (shared/keys/scopes.py); a GET
    # of the path itself is a listing, whose `prefix` names the bucket.
    bucket_path: str = ""
    timeout_secs: float = 30.0  # the gateway's default wait for response headers; 0 = derived (timeout_help says how)
    timeout_help: str = ""
    writable: tuple[Writable, ...] = ()  # where it writes: systemd's ReadWritePaths, `config check --for`
    optional_urls: frozenset[str] = frozenset()  # URL keys where "" is a documented choice (run without it)
    key_files: Callable[[Any], Sequence[KeyFile]] = field(default=lambda section: ())  # its section in, its secrets

    def __post_init__(self) -> None:
        for family in (self.family, *self.more_families):
            segment = family.removeprefix(FAMILY_PREFIX)
            if family and (not family.startswith(FAMILY_PREFIX) or not segment or "/" in segment):
                raise ValueError(f'{self.name}: family must be "/v1/<segment>", got "{family}"')
        if (self.exact_paths or self.more_families) and not self.family:
            raise ValueError(f"{self.name}: exact paths need a family (they share its upstream and timeout)")
        if self.family and not all(self.scopes):
            raise ValueError(f"{self.name}: a service with a family names the scopes a key needs there")
        if self.timeout_secs == 0 and not self.timeout_help:
            raise ValueError(f"{self.name}: a timeout of 0 (derived) needs timeout_help saying how")

    @property
    def default_bind(self) -> str:
        bind: str = self.section.model_fields["bind"].default
        return bind

    @property
    def default_port(self) -> int:
        return int(self.default_bind.rpartition(":")[2])

    @property
    def front_door(self) -> bool:
        """The service with no family is the gateway: the one port clients reach, in front of all the others."""
        return not self.family

    @property
    def gateway_url_key(self) -> str:
        """The [gateway] key holding this service's upstream URL; "" for the gateway itself."""
        return f"{self.name}_url" if self.family else ""

    @property
    def timeout_key(self) -> str:
        """The [gateway.timeouts] key: the family's segment ("chat" for /v1/chat)."""
        return self.family.removeprefix(FAMILY_PREFIX)

    @property
    def routes(self) -> tuple[str, ...]:
        return (self.family, *self.more_families, *self.exact_paths) if self.family else ()


class RegistryError(Exception):
    """An entry point that is not a service row, or two rows that clash; the message names the entry point."""


@functools.cache
def services() -> tuple[Service, ...]:
    """Every registered service, the gateway first, then by default port (the order `up` starts them in)."""
    rows: list[Service] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        row = entry.load()
        if not isinstance(row, Service):
            raise RegistryError(f"entry point {entry.name} = {entry.value!r} is not a shared.registry.Service")
        if row.name != entry.name:
            raise RegistryError(f"entry point {entry.name} = {entry.value!r} declares the service {row.name!r}")
        rows.append(row)
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise RegistryError(f"a service is registered twice: {sorted(n for n in names if names.count(n) > 1)}")
    if sum(row.front_door for row in rows) != 1:
        raise RegistryError(f"exactly one service must have no family (the gateway), got {names}")
    if sum(row.serves_s3 for row in rows) > 1:
        raise RegistryError(f"at most one service may serve the S3 API, got {[r.name for r in rows if r.serves_s3]}")
    return tuple(sorted(rows, key=lambda row: (not row.front_door, row.default_port)))


def service(name: str) -> Service:
    """The row of `name`; KeyError for a name nobody registered."""
    for row in services():
        if row.name == name:
            return row
    raise KeyError(name)


def names() -> list[str]:
    return [row.name for row in services()]


def upstreams() -> tuple[Service, ...]:
    """The services the gateway forwards to."""
    return tuple(row for row in services() if row.family)


def gateway() -> Service:
    return next(row for row in services() if row.front_door)
