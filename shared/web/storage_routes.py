"""The two facts of storaged's wire that the gateway needs without importing storaged (its key store reads keys over
HTTP, as on separate boxes): where storaged's internal object route is, and the prefix the key store owns there.
storaged's schemas take both from here."""

from __future__ import annotations

# Outside /v1/: the gateway never forwards it (services/storaged/app.py has the threat model).
INTERNAL_OBJECTS = "/internal/storage/objects"
KEYS_PREFIX = "_keys/"
