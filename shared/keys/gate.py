"""The check of a bearer that is not the root token: a key's secret, unexpired, with the scope the request needs,
within its requests per minute.

A key that passes is swapped for the root token on its way upstream (the services behind the gateway trust the root
token only, as they always have), and its grant rides along for the services' own limits (shared/keys/grant.py);
the key's record rides in the ASGI scope for the gateway's own routes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import Scope

from shared.errors import LakehouseError
from shared.keys.grant import GRANT_SCOPE, encode
from shared.keys.meters import MeterFile
from shared.keys.records import KeyRecord, budget_window, id_of
from shared.keys.scopes import ScopeTable
from shared.keys.store import KeyCache

KEY_SCOPE = "lakehouse.key"  # the ASGI scope entry holding the admitted key's record
WRONG = "missing or wrong Authorization: Bearer token"


def rpm_meter(key_id: str) -> str:
    return f"{key_id}:rpm"


def requests_meter(key_id: str) -> str:
    return f"{key_id}:requests"


def retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds)))}


class KeyGate:
    def __init__(self, cache: KeyCache, table: ScopeTable, root_token: str, meters: Callable[[], MeterFile]) -> None:
        self.cache = cache
        self.table = table
        self.root = b"Bearer " + root_token.encode()
        self.meters = meters  # opened on the first key with a limit
        self._grants: dict[str, tuple[KeyRecord, bytes]] = {}  # each key's header, encoded once per record

    def admit(self, scope: Scope, presented: bytes) -> LakehouseError | None:
        secret = presented.decode("latin-1")
        key_id = id_of(secret)
        record = self.cache.get(key_id) if key_id is not None else None
        if record is None or not record.matches(secret):
            return LakehouseError("unauthorized", WRONG)
        if record.expired():
            return LakehouseError("unauthorized", f"key {record.id} expired at {record.expires_at}")
        method: str = scope.get("method", "GET")
        needed = self.table.needed(method, scope["path"])
        if needed is not None and needed not in record.scopes:
            return LakehouseError(
                "forbidden", f"key {record.id} ({record.name}) lacks scope {needed!r} for {method} {scope['path']}"
            )
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
        self._as_root(scope, record)
        return None

    def _as_root(self, scope: Scope, record: KeyRecord) -> None:
        scope["headers"] = [
            (name, self.root if name == b"authorization" else value) for name, value in scope["headers"]
        ]
        scope[KEY_SCOPE] = record
        cached = self._grants.get(record.id)
        if cached is None or cached[0] is not record:
            cached = self._grants[record.id] = (record, encode(record.grant()))
        scope[GRANT_SCOPE] = cached[1]
