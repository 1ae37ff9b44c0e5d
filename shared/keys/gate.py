"""The check of a request made with a client key: a bearer that is not the root token, or an S3 request signed with a
key's id and secret. The key must be known and unexpired, hold the scope the request needs (and its bucket, for a key
limited to buckets), and be within its requests per minute.

A bearer key that passes is swapped for the root token on its way upstream (the services behind the gateway trust
the root token only, as they always have); an S3 request keeps its signature, which storaged checks again with the
body. Either way the key's grant rides along for the services' own limits (shared/keys/grant.py), and the key's
record rides in the ASGI scope for the gateway's own routes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import Scope

from shared.errors import LakehouseError
from shared.keys.grant import GRANT_SCOPE, encode
from shared.keys.meters import MeterFile
from shared.keys.records import ID_PATTERN, KeyRecord, budget_window, id_of
from shared.keys.scopes import FamilyScopes, ScopeTable, access_refusal
from shared.keys.sealing import Sealer
from shared.keys.store import KeyCache
from shared.s3.errors import S3Error
from shared.s3.sigv4 import Verifier, claimed_key_id

KEY_SCOPE = "lakehouse.key"  # the ASGI scope entry holding the admitted key's record
WRONG = "missing or wrong Authorization: Bearer token"


def rpm_meter(key_id: str) -> str:
    return f"{key_id}:rpm"


def requests_meter(key_id: str) -> str:
    return f"{key_id}:requests"


def retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def is_client_key_id(key_id: str | None) -> bool:
    return key_id is not None and ID_PATTERN.fullmatch(key_id) is not None


class KeyGate:
    def __init__(
        self,
        cache: KeyCache,
        table: ScopeTable,
        root_token: str,
        meters: Callable[[], MeterFile],
        *,
        sealer: Sealer | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.cache = cache
        self.table = table
        self.root = b"Bearer " + root_token.encode()
        self.meters = meters  # opened on the first key with a limit
        self.sealer = sealer
        self.verifier = Verifier(self.s3_secret, region=region)
        self._grants: dict[str, tuple[KeyRecord, bytes]] = {}  # each key's header, encoded once per record
        self._s3_secrets: dict[str, tuple[KeyRecord, str | None]] = {}  # each key's unsealed secret, per record

    def admit(self, scope: Scope, presented: bytes) -> LakehouseError | None:
        """A bearer key's check; None admits the request, sent upstream as the root token's."""
        secret = presented.decode("latin-1")
        key_id = id_of(secret)
        record = self.cache.get(key_id) if key_id is not None else None
        if record is None or not record.matches(secret):
            return LakehouseError("unauthorized", WRONG)
        path: str = scope["path"]
        family = self.table.family_of(path)
        bucket = family.bucket_of(path, scope.get("query_string", b"")) if family and family.bucket_path else None
        refusal = self._check(scope, record, family, bucket, bucketed=bool(family and family.bucket_path))
        if refusal is None:
            self._admitted(scope, record)
            scope["headers"] = [
                (name, self.root if name == b"authorization" else value) for name, value in scope["headers"]
            ]
        return refusal

    def admit_signed(self, scope: Scope) -> S3Error | None:
        """An S3 request signed with a key's id and secret; None admits it (signature and all, as it came). One
        signed with another key pair (`[s3_api]`'s) is not a client key's: it passes, for storaged to check."""
        key_id = claimed_key_id(scope)
        if not is_client_key_id(key_id):
            return None
        record = self.cache.get(key_id) if key_id is not None else None
        if record is None:
            return S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        if self.s3_secret(record.id) is None:
            why = "made before auth.master_key was set, or under another" if self.sealer else "no auth.master_key here"
            return S3Error("InvalidAccessKeyId", f"key {record.id} has no S3 secret to sign with ({why}): rotate it")
        try:
            self.verifier.verify(scope)  # the signature must hold before the key's limits are spent
        except S3Error as exc:
            return exc
        path: str = scope["path"]
        bucket = path.removeprefix("/").partition("/")[0] or None
        refusal = self._check(scope, record, self.table.s3, bucket, bucketed=True, listing_all=bucket is None)
        if refusal is not None:
            return S3Error.from_native(refusal, resource=path)
        self._admitted(scope, record)
        return None

    def s3_secret(self, key_id: str) -> str | None:
        record = self.cache.get(key_id)
        if record is None or record.sealed_secret is None or self.sealer is None:
            return None
        cached = self._s3_secrets.get(key_id)
        if cached is None or cached[0] is not record:
            cached = self._s3_secrets[key_id] = (record, self.sealer.unseal(key_id, record.sealed_secret))
        return cached[1]

    def _check(
        self,
        scope: Scope,
        record: KeyRecord,
        family: FamilyScopes | None,
        bucket: str | None,
        *,
        bucketed: bool,
        listing_all: bool = False,
    ) -> LakehouseError | None:
        method: str = scope.get("method", "GET")
        refusal = access_refusal(
            record, family, method, scope["path"], bucket, bucketed=bucketed, listing_all=listing_all
        )
        if refusal is not None:
            return refusal
        meters = self.meters()
        now = time.time()
        if record.rpm is not None:
            wait = meters.take(rpm_meter(record.id), record.rpm, now=now)
            if wait:
                return LakehouseError(
                    "rate_limited",
                    f"key {record.id} ({record.name}) is past its limit of {record.rpm} requests per minute (rpm)",
                    headers=retry_after(wait),
                )
        meters.add(requests_meter(record.id), budget_window(record.budget_period, now)[0], 1)
        return None

    def _admitted(self, scope: Scope, record: KeyRecord) -> None:
        scope[KEY_SCOPE] = record
        cached = self._grants.get(record.id)
        if cached is None or cached[0] is not record:
            cached = self._grants[record.id] = (record, encode(record.grant()))
        scope[GRANT_SCOPE] = cached[1]
