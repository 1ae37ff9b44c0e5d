"""A key's grant on its way upstream: the `x-lakehouse-key` header the gateway sets on each request a key makes.

The services trust the gateway (it swaps the key for the root token), so they trust this header too: the gateway
drops any a client sends and sets its own. chatd reads it to enforce the key's models, tokens per minute and budget
and to write the key's id and name in the spend ledger. The value is the grant as ASCII JSON.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from shared.keys.records import KeyGrant

GRANT_HEADER = "x-lakehouse-key"
GRANT_SCOPE = "lakehouse.grant"  # the ASGI scope entry holding the header value the proxy sends upstream


def encode(grant: KeyGrant) -> bytes:
    # A key's name may be anything: ensure_ascii escapes it into what a header value may carry.
    fields = grant.model_dump(mode="json", exclude_none=True)
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode(value: str | None) -> KeyGrant | None:
    """The grant a request carries; None when it carries none (the root token's requests).

    ValueError for one that does not parse: only the gateway sets it, so that is a fault to report, never a request
    to let through unlimited."""
    if value is None:
        return None
    try:
        return KeyGrant.model_validate_json(value)
    except ValidationError:
        raise ValueError(f"{GRANT_HEADER} is not a key grant the gateway sets") from None
