"""Which scope a request needs, from the service registry: each row names its family's (read, write) scopes.

Reading is GET and HEAD, and a POST to a path the row says is a read (vectord's `/query`); the rest writes.
`/v1/keys` needs `admin`; `/v1/health` any valid key. The valid scopes are exactly the ones rows name, and admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.registry import FAMILY_PREFIX, upstreams

ADMIN = "admin"
READ_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = frozenset({"/v1/health"})  # any valid key may ask


@dataclass(frozen=True, slots=True)
class FamilyScopes:
    read: str
    write: str
    reads_by_post: tuple[str, ...] = ()

    def needed(self, method: str, path: str) -> str:
        if method in READ_METHODS or (method == "POST" and path.endswith(self.reads_by_post or ("\0",))):
            return self.read
        return self.write


@dataclass(frozen=True, slots=True)
class ScopeTable:
    by_segment: dict[str, FamilyScopes]  # "storage", "iceberg", ...: the segment after /v1/
    by_path: dict[str, FamilyScopes]  # exact paths: /v1/models, /v1/embeddings

    @property
    def valid(self) -> frozenset[str]:
        every = [*self.by_segment.values(), *self.by_path.values()]
        return frozenset({ADMIN, *(s.read for s in every), *(s.write for s in every)})

    def needed(self, method: str, path: str) -> str | None:
        """The scope `method path` needs; None when any valid key may (health, a path no family serves)."""
        if path in OPEN_PATHS:
            return None
        exact = self.by_path.get(path)
        if exact is not None:
            return exact.needed(method, path)
        segment = path.removeprefix(FAMILY_PREFIX).partition("/")[0]
        family = self.by_segment.get(segment) if path.startswith(FAMILY_PREFIX) else None
        return family.needed(method, path) if family is not None else None


def scope_table() -> ScopeTable:
    segments: dict[str, FamilyScopes] = {"keys": FamilyScopes(ADMIN, ADMIN)}
    paths: dict[str, FamilyScopes] = {}
    for row in upstreams():
        scopes = FamilyScopes(*row.scopes, row.reads_by_post)
        for family in (row.family, *row.more_families):
            segments[family.removeprefix(FAMILY_PREFIX)] = scopes
        for path in row.exact_paths:
            paths[path] = scopes
    return ScopeTable(segments, paths)
