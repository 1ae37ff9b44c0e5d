"""The check of a bearer that is not the root token: a key's secret, unexpired, with the scope the request needs.

A key that passes is swapped for the root token on its way upstream (the services behind the gateway trust the root
token only, as they always have); the key's record rides in the ASGI scope for the gateway's own routes.
"""

from __future__ import annotations

from starlette.types import Scope

from shared.errors import ErrorCode
from shared.keys.records import KeyRecord, id_of
from shared.keys.scopes import ScopeTable
from shared.keys.store import KeyCache

KEY_SCOPE = "lakehouse.key"  # the ASGI scope entry holding the admitted key's record
WRONG = "missing or wrong Authorization: Bearer token"

Refusal = tuple[ErrorCode, str]


class KeyGate:
    def __init__(self, cache: KeyCache, table: ScopeTable, root_token: str) -> None:
        self.cache = cache
        self.table = table
        self.root = b"Bearer " + root_token.encode()

    def admit(self, scope: Scope, presented: bytes) -> Refusal | None:
        secret = presented.decode("latin-1")
        key_id = id_of(secret)
        record = self.cache.get(key_id) if key_id is not None else None
        if record is None or not record.matches(secret):
            return "unauthorized", WRONG
        if record.expired():
            return "unauthorized", f"key {record.id} expired at {record.expires_at}"
        method: str = scope.get("method", "GET")
        needed = self.table.needed(method, scope["path"])
        if needed is not None and needed not in record.scopes:
            return "forbidden", f"key {record.id} ({record.name}) lacks scope {needed!r} for {method} {scope['path']}"
        self._as_root(scope, record)
        return None

    def _as_root(self, scope: Scope, record: KeyRecord) -> None:
        scope["headers"] = [
            (name, self.root if name == b"authorization" else value) for name, value in scope["headers"]
        ]
        scope[KEY_SCOPE] = record
