"""A key: id (shown in logs and listings), name, scopes, limits, an expiry, and its secret as a salted hash only.

The secret is `lhs_<id>_<40 random characters>`: the id inside lets the gateway find the key without trying them
all, the random part is what makes it a credential. It is shown once, when the key is made or rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.keys.sealing import Sealer

BudgetPeriod = Literal["day", "month", "total"]

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ID_PATTERN = re.compile(r"^LH[A-Z2-7]{18}$")  # 20 characters, as an AWS access key id
SECRET_PREFIX = "lhs_"
SECRET_PATTERN = re.compile(r"^lhs_(LH[A-Z2-7]{18})_[A-Za-z0-9_-]{40}$")


def new_id() -> str:
    return "LH" + "".join(secrets.choice(ID_ALPHABET) for _ in range(18))


def new_secret(key_id: str) -> str:
    return f"{SECRET_PREFIX}{key_id}_{secrets.token_urlsafe(30)}"


def id_of(secret: str) -> str | None:
    """The key id a presented secret names; None when it is not shaped like a key's secret."""
    found = SECRET_PATTERN.fullmatch(secret)
    return found.group(1) if found else None


def secret_hash(salt: str, secret: str) -> str:
    # The secret is 240 random bits: a salted SHA-256 cannot be reversed or searched, and costs ~1 us per request.
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class KeyGrant(BaseModel):
    """What the services behind the gateway need of a key, sent with each request it makes (shared/keys/grant.py):
    who it is, for the spend ledger, and the limits they enforce themselves (chatd: models, tokens, budget)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    models: list[str] | None = None  # chat: only these models or tiers (as the request names them)
    tpm: int | None = None  # chat: tokens per minute
    budget_usd: float | None = None  # chat: USD per budget_period
    budget_period: BudgetPeriod = "total"


class KeyRecord(KeyGrant):
    """A key as stored at `_keys/<id>.json`."""

    scopes: list[str]
    buckets: list[str] | None = None  # storage (native and S3): only these buckets
    rpm: int | None = None  # requests per minute, every family
    created_at: datetime
    expires_at: datetime | None = None
    salt: str
    secret_hash: str
    sealed_secret: str | None = None  # the secret, for S3 signatures: sealed with the master key (sealing.py)

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(secret_hash(self.salt, secret), self.secret_hash)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def public(self) -> dict[str, object]:
        """What listings and answers show: everything but the salt, hash and sealed secret."""
        shown = self.model_dump(mode="json", exclude={"salt", "secret_hash", "sealed_secret"})
        return {**shown, "signs_s3": self.sealed_secret is not None}

    def allows_bucket(self, bucket: str) -> bool:
        return self.buckets is None or bucket in self.buckets

    def grant(self) -> KeyGrant:
        return KeyGrant.model_validate(self.model_dump(include=set(KeyGrant.model_fields)))


def issue(terms: KeyTerms, key_id: str | None = None, sealer: Sealer | None = None) -> tuple[KeyRecord, str]:
    """A new key on `terms` (or, with `key_id`, a new secret for that key) and its secret; with a `sealer` the
    record keeps the secret sealed too, for S3 signatures."""
    key_id = key_id or new_id()
    secret = new_secret(key_id)
    salt = secrets.token_hex(16)
    record = KeyRecord(
        id=key_id,
        created_at=datetime.now(UTC),
        salt=salt,
        secret_hash=secret_hash(salt, secret),
        sealed_secret=sealer.seal(key_id, secret) if sealer else None,
        **terms.model_dump(),
    )
    return record, secret


Limit = Field(None, ge=1, le=10**9)


class KeyTerms(BaseModel):
    """`POST /v1/keys`: everything a key is but its id and secret."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    buckets: list[str] | None = Field(None, min_length=1)
    models: list[str] | None = Field(None, min_length=1)
    rpm: int | None = Limit
    tpm: int | None = Limit
    budget_usd: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)
    budget_period: BudgetPeriod = "total"
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (RFC 3339, e.g. 2027-01-01T00:00:00Z)")
        return value

    @field_validator("scopes")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


def budget_window(period: BudgetPeriod, now: float) -> tuple[float, float]:
    """(start, end) of the budget period `now` is in, as Unix times (UTC days and months; a key's life is one)."""
    if period == "total":
        return 0.0, math.inf
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), start.timestamp() + 86_400
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return start.timestamp(), following.timestamp()
