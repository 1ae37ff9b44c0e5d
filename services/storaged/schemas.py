"""storaged's wire models: what PUT and the listing answer, and an object's metadata as GET/HEAD give it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import Field

# storaged's wire, stated in shared for the gateway's key store; re-exported for storaged and its clients.
from shared.web.storage_routes import INTERNAL_OBJECTS as INTERNAL_OBJECTS
from shared.web.storage_routes import KEYS_PREFIX as KEYS_PREFIX
from shared.web.wire import WireModel

OBJECTS = "/v1/storage/objects"
MAX_LIST_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 1000

# The reserved prefixes and who owns each: the one table of them. Their objects are reachable only through
# storaged's internal route (services/storaged/app.py says why), which their owners' clients use
# (`StoragedClient(..., internal=True)`); the public API refuses them and its listings skip them.
CATALOG_PREFIX = "_catalog/"
VECTORD_PREFIX = "vectord/"
S3_PREFIX = "_s3/"  # the S3 API's own state: empty buckets' markers, multipart uploads in progress
RESERVED_PREFIXES: Mapping[str, str] = {
    CATALOG_PREFIX: "catalogd",
    VECTORD_PREFIX: "vectord",
    KEYS_PREFIX: "the key store",
    S3_PREFIX: "the S3 API",
}


# Where the data lives: ingested Parquet (s3://datasets/<dataset>/... through the S3 API).
DATASETS_PREFIX = "datasets/"


def data_file_key(dataset: str, run: str, part: int) -> str:
    """The key of part `part` of ingest run `run` of `dataset` (ingestd writes it, the catalog's manifests list it)."""
    return f"{DATASETS_PREFIX}{dataset}/{run}/part-{part:05d}.parquet"


def local_object_path(root: str, key: str) -> str:
    """The file that holds object `key` on the local backend under `root`: exactly `root/<key>`, which is what lets a
    reader on the same box (queryd's DuckDB) read an object without storaged in the way."""
    return root.rstrip("/") + "/" + key


def reserved_prefix(key: str) -> str | None:
    """The reserved prefix `key` lies in, or None; the bare segment ("_catalog") counts too, since on S3 an object
    of that name could sit beside the prefix."""
    for prefix in RESERVED_PREFIXES:
        if key.startswith(prefix) or key == prefix[:-1]:
            return prefix
    return None


class PutResult(WireModel):
    """201 body of `PUT /v1/storage/objects/{key}`."""

    key: str
    size: int
    etag: str = Field(description='the quoted ETag, e.g. "\\"9a0364b9e99bb480dd25e1f0284c8555\\""')


class ObjectInfo(WireModel):
    """One entry of the listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class ObjectList(WireModel):
    """`GET /v1/storage/objects?prefix=&limit=&after=`: sorted by key; `next` is the `after` of the next page."""

    objects: list[ObjectInfo]
    next: str | None


class ObjectMeta(WireModel):
    """An object's metadata as GET and HEAD give it in headers (size is the whole object's, ranges aside)."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str
