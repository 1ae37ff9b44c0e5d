"""Client keys as storaged's S3 API checks them: the records the gateway stores at `_keys/<id>.json`, read from the
backend when a request names one, each kept at most `MAX_AGE_SECS`, so a revoked or rotated key stops signing
within that, as it does at the gateway.

storaged checks a key-signed request itself (the signature with the body, the scope, the buckets) because it can
be reached without the gateway on a box of its own; the gateway checks the same before it spends the key's requests
per minute.
"""

from __future__ import annotations

import time

from pydantic import ValidationError
from starlette.types import Scope

from services.storaged.backends.base import Backend
from services.storaged.schemas import KEYS_PREFIX
from shared.errors import LakehouseError
from shared.keys.gate import is_client_key_id
from shared.keys.records import KeyRecord
from shared.keys.scopes import ScopeTable, access_refusal
from shared.keys.sealing import Sealer
from shared.s3.errors import S3Error
from shared.s3.sigv4 import claimed_key_id

MAX_AGE_SECS = 1.0
MAX_RECORD_BYTES = 64 << 10
# Ids read, kept or not found: a client may claim any id, so the memory of them is bounded (oldest read out first).
MAX_REMEMBERED = 10_000


class ClientKeys:
    def __init__(self, backend: Backend, sealer: Sealer | None, table: ScopeTable) -> None:
        self.backend = backend
        self.sealer = sealer
        self.table = table
        self._read: dict[str, tuple[float, KeyRecord | None, str | None]] = {}  # id -> (when, record, secret)

    async def load(self, scope: Scope, *, fresh: bool = False) -> tuple[KeyRecord | None, bool]:
        """The record of the client key the request claims to be signed with (None: it claims none, or one that is
        not stored), and whether it came from the cache; its secret is then what `secret_of` answers. `fresh` reads
        it again even if just read (a key made or rotated since)."""
        key_id = claimed_key_id(scope)
        if self.sealer is None or key_id is None or not is_client_key_id(key_id):
            return None, False
        now = time.monotonic()
        known = self._read.get(key_id)
        if known is not None and now - known[0] < MAX_AGE_SECS and not fresh:
            return known[1], True
        record = await self._fetch(key_id)
        secret = self.sealer.unseal(key_id, record.sealed_secret) if record and record.sealed_secret else None
        self._read.pop(key_id, None)
        if len(self._read) >= MAX_REMEMBERED:
            del self._read[next(iter(self._read))]
        self._read[key_id] = (now, record, secret)
        return record, False

    def secret_of(self, key_id: str) -> str | None:
        known = self._read.get(key_id)
        return known[2] if known else None

    async def _fetch(self, key_id: str) -> KeyRecord | None:
        try:
            handle = await self.backend.open(f"{KEYS_PREFIX}{key_id}.json")
        except LakehouseError as exc:
            if exc.code == "not_found":
                return None
            raise
        try:
            data = b"".join([chunk async for chunk in handle.stream(None)])
        finally:
            await handle.aclose()
        try:
            return KeyRecord.model_validate_json(data[:MAX_RECORD_BYTES])
        except ValidationError:
            return None  # not a record the gateway wrote: no key signs with it

    def refusal(self, scope: Scope, record: KeyRecord, bucket: str) -> S3Error | None:
        """Why the verified key `record` may not make this request (its expiry, scope, buckets); None: it may."""
        path: str = scope["path"]
        refusal = access_refusal(
            record, self.table.s3, scope["method"], path, bucket or None, bucketed=True, listing_all=not bucket
        )
        return S3Error.from_native(refusal, resource=path) if refusal is not None else None
