"""Which scope a request needs, from the service registry: each row names its family's (read, write) scopes.

Reading is GET and HEAD, and a POST to a path the row says is a read (vectord's `/query`); the rest writes.
`/v1/keys` needs `admin`; `/v1/health` any valid key. The valid scopes are exactly the ones rows name, and admin.
S3 requests need the scopes of the row that serves S3. A key limited to buckets reaches, in that row's family and
through S3, the objects of those buckets only (`bucket_refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from shared.errors import LakehouseError
from shared.keys.records import KeyRecord
from shared.registry import FAMILY_PREFIX, upstreams

ADMIN = "admin"
READ_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = frozenset({"/v1/health"})  # any valid key may ask


@dataclass(frozen=True, slots=True)
class FamilyScopes:
    read: str
    write: str
    reads_by_post: tuple[str, ...] = ()
    bucket_path: str = ""  # the path under which the next segment is a bucket (the registry row's)

    def needed(self, method: str, path: str) -> str:
        if method in READ_METHODS or (method == "POST" and path.endswith(self.reads_by_post or ("\0",))):
            return self.read
        return self.write

    def bucket_of(self, path: str, query_string: bytes) -> str | None:
        """The bucket a native request of this family names: the segment after `bucket_path`, or for a listing the
        first segment of its `prefix`; None when it names none (a listing of everything, another route)."""
        if not self.bucket_path or not path.startswith(self.bucket_path):
            return None
        rest = path.removeprefix(self.bucket_path)
        if rest.startswith("/"):
            bucket, slash, _ = rest[1:].partition("/")
            return bucket if slash else None
        if rest:
            return None
        prefix = parse_qs(query_string.decode("latin-1")).get("prefix", [""])[0]
        bucket, slash, _ = prefix.partition("/")
        return bucket if slash else None


def bucket_refusal(record: KeyRecord, bucket: str | None, *, listing_all: bool = False) -> str | None:
    """Why `record` may not reach `bucket` (None: it may); `listing_all` is S3's ListBuckets, which a limited key may
    ask and sees its own buckets in."""
    if record.buckets is None or listing_all or (bucket is not None and bucket in record.buckets):
        return None
    allowed = ", ".join(record.buckets)
    if bucket is None:
        return (
            f"key {record.id} ({record.name}) is limited to buckets {allowed}: name one (a listing's prefix=<bucket>/)"
        )
    return f"key {record.id} ({record.name}) is limited to buckets {allowed}, not {bucket!r}"


def access_refusal(
    record: KeyRecord,
    family: FamilyScopes | None,
    method: str,
    path: str,
    bucket: str | None,
    *,
    bucketed: bool,
    listing_all: bool = False,
) -> LakehouseError | None:
    """Why `record` may not make `method path` (expired, a scope it lacks, a bucket outside its own); None: it may.
    The one check of a key's terms, for the gateway (before its rpm) and for storaged's S3 API."""
    if record.expired():
        return LakehouseError("unauthorized", f"key {record.id} expired at {record.expires_at}")
    needed = family.needed(method, path) if family is not None else None
    if needed is not None and needed not in record.scopes:
        return LakehouseError(
            "forbidden", f"key {record.id} ({record.name}) lacks scope {needed!r} for {method} {path}"
        )
    refused = bucket_refusal(record, bucket, listing_all=listing_all) if bucketed else None
    return LakehouseError("forbidden", refused) if refused is not None else None


@dataclass(frozen=True, slots=True)
class ScopeTable:
    by_segment: dict[str, FamilyScopes]  # "storage", "iceberg", ...: the segment after /v1/
    by_path: dict[str, FamilyScopes]  # exact paths: /v1/models, /v1/embeddings
    s3: FamilyScopes | None = None  # the scopes of the row serving S3

    @property
    def valid(self) -> frozenset[str]:
        every = [*self.by_segment.values(), *self.by_path.values()]
        return frozenset({ADMIN, *(s.read for s in every), *(s.write for s in every)})

    def family_of(self, path: str) -> FamilyScopes | None:
        """The scopes of the family `path` is in; None when any valid key may ask (health, a path no family serves)."""
        if path in OPEN_PATHS:
            return None
        exact = self.by_path.get(path)
        if exact is not None:
            return exact
        segment = path.removeprefix(FAMILY_PREFIX).partition("/")[0]
        return self.by_segment.get(segment) if path.startswith(FAMILY_PREFIX) else None

    def needed(self, method: str, path: str) -> str | None:
        """The scope `method path` needs; None when any valid key may."""
        family = self.family_of(path)
        return family.needed(method, path) if family is not None else None


def scope_table() -> ScopeTable:
    segments: dict[str, FamilyScopes] = {"keys": FamilyScopes(ADMIN, ADMIN)}
    paths: dict[str, FamilyScopes] = {}
    s3: FamilyScopes | None = None
    for row in upstreams():
        scopes = FamilyScopes(*row.scopes, row.reads_by_post, row.bucket_path)
        for family in (row.family, *row.more_families):
            segments[family.removeprefix(FAMILY_PREFIX)] = scopes
        for path in row.exact_paths:
            paths[path] = scopes
        if row.serves_s3:
            s3 = FamilyScopes(*row.scopes)
    return ScopeTable(segments, paths, s3)
