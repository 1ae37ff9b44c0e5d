"""What a key may spend on chat and what each request cost: the key's models, tokens per minute and budget checked
before a request is dispatched, then its usage charged to the key's meters and written to the spend ledger.

A request is admitted against the tokens it may use (`max_tokens`; none reserves nothing, and is admitted while
the key has tokens left) and charged the tokens it used; a budget admits while the period's spend is under it, so
requests already in flight when it is reached may pass it by what they cost. The meters are a file in
`[chatd] ledger_dir` (shared/keys/meters.py): a restart of chatd keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from services.catalogd.client import CatalogdClient
from services.chatd.ledger import SpendRecord, Spool
from services.chatd.shipper import Shipper
from services.chatd.types import ChatError, ChatRequest
from services.storaged.client import StoragedClient
from shared.config import LakehouseConfig
from shared.config.chatd import Price
from shared.keys.grant import GRANT_HEADER, decode
from shared.keys.meters import METER_FILE, MeterFile
from shared.keys.records import KeyGrant, budget_window

ROOT_NAME = "root"  # the ledger's key_name for requests made with the root token
SPOOL_DIR = "spool"
FINAL_SHIP_SECS = 5.0  # how long a stopping chatd tries to ship what its spool holds


def tpm_meter(key_id: str) -> str:
    return f"{key_id}:tpm"


def tokens_meter(key_id: str) -> str:
    return f"{key_id}:tokens"


def spend_meter(key_id: str) -> str:
    return f"{key_id}:spend"


def grant_of(headers: Mapping[str, str]) -> KeyGrant | None:
    """The key grant a request carries (None: the root token's); 400 for one that does not parse."""
    try:
        return decode(headers.get(GRANT_HEADER))
    except ValueError as exc:
        raise ChatError("invalid_request", str(exc)) from None


def _retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds)))} if math.isfinite(seconds) else {}


class Accounts:
    def __init__(self, prices: Mapping[str, Price], meters: MeterFile, spool: Spool | None) -> None:
        self.prices = dict(prices)
        self.meters = meters
        self.spool = spool

    def admit(self, grant: KeyGrant | None, chat: ChatRequest) -> int:
        """The tokens reserved for `chat` on `grant`'s key; ChatError 403 or 429 when the key may not make it."""
        if grant is None:
            return 0
        if grant.models is not None:
            for name in [chat.model, *(chat.fallbacks or [])]:
                if name not in grant.models:
                    raise ChatError(
                        "forbidden",
                        f"key {grant.id} ({grant.name}) may not use model {name!r}; it may use "
                        + ", ".join(repr(m) for m in grant.models),
                        param="model",
                    )
        now = time.time()
        if grant.budget_usd is not None:
            start, end = budget_window(grant.budget_period, now)
            spent = self.meters.total(spend_meter(grant.id), start)
            if spent >= grant.budget_usd:
                period = "its life" if grant.budget_period == "total" else f"this {grant.budget_period}"
                raise ChatError(
                    "budget_exceeded",
                    f"key {grant.id} ({grant.name}) has spent ${spent:.6f} of its budget of ${grant.budget_usd:g} "
                    f"for {period}",
                    headers=_retry_after(end - now),
                )
        if grant.tpm is None:
            return 0
        reserved = chat.max_tokens or 0
        wait = self.meters.take(tpm_meter(grant.id), grant.tpm, reserved, now=now)
        if wait:
            needs = f"{reserved} (max_tokens)" if reserved else "any"
            raise ChatError(
                "rate_limited",
                f"key {grant.id} ({grant.name}) is past its limit of {grant.tpm} tokens per minute (tpm): "
                f"the request needs {needs}",
                headers=_retry_after(wait),
            )
        return reserved

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.prices.get(model or "")
        if price is None:
            return 0.0
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6

    def settle(self, grant: KeyGrant | None, reserved: int, record: SpendRecord) -> None:
        """Charge `record` to the key's meters and write it to the ledger: before the answer completes."""
        if grant is not None:
            used = record.prompt_tokens + record.completion_tokens
            if grant.tpm is not None:
                self.meters.adjust(tpm_meter(grant.id), grant.tpm, used - reserved)
            start, _ = budget_window(grant.budget_period, time.time())
            if used:
                self.meters.add(tokens_meter(grant.id), start, used)
            if record.cost_usd:
                self.meters.add(spend_meter(grant.id), start, record.cost_usd)
        if self.spool is not None:
            self.spool.append(record)

    def usage(self, grant: KeyGrant) -> dict[str, Any]:
        """The key's tokens this minute and spend this period, next to its limits (`GET /v1/chat/usage`)."""
        now = time.time()
        start, _ = budget_window(grant.budget_period, now)
        tokens = None
        if grant.tpm is not None:
            tokens = round(grant.tpm - self.meters.level(tpm_meter(grant.id), grant.tpm, now), 3)
        return {
            "tokens_in_period": int(self.meters.total(tokens_meter(grant.id), start)),
            "tokens_this_minute": tokens,
            "tpm": grant.tpm,
            "spend_usd": round(self.meters.total(spend_meter(grant.id), start), 9),
            "budget_usd": grant.budget_usd,
            "models": grant.models,
        }


@asynccontextmanager
async def running_accounts(config: LakehouseConfig) -> AsyncIterator[Accounts]:
    """The accounts of `[chatd]`: meters and spool in `ledger_dir` ("" = meters in memory, no ledger), shipped to
    the `spend` dataset while both ledger URLs are set; at a stop, what is spooled is shipped once more."""
    section = config.chatd
    if not section.ledger_dir:
        yield Accounts(section.prices, MeterFile(None), None)
        return
    directory = Path(section.ledger_dir)
    meters = MeterFile(directory / METER_FILE)
    spool = Spool(directory / SPOOL_DIR)
    try:
        accounts = Accounts(section.prices, meters, spool)
        if not (section.storaged_url and section.catalogd_url):
            yield accounts
            return
        token = config.auth.token.get_secret_value()
        async with (
            StoragedClient(section.storaged_url, token=token) as storage,
            CatalogdClient(section.catalogd_url, token=token) as catalog,
        ):
            shipper = Shipper(spool, storage, catalog, compact_files=section.ledger_compact_files)
            task = asyncio.create_task(shipper.run(section.ledger_ship_secs))
            try:
                yield accounts
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                with contextlib.suppress(Exception):  # best effort: whatever is left ships at the next start
                    await asyncio.wait_for(shipper.ship(), FINAL_SHIP_SECS)
    finally:
        spool.close()
        meters.close()
