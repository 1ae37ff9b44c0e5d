"""Uncompleted multipart uploads are deleted once they are `s3_api.upload_expiry_hours` old, parts and record.

S3 keeps an abandoned upload (and bills its parts) until a lifecycle rule aborts it; MinIO sweeps stale uploads after
24 hours. Here the sweep is built in: a client that dies mid-upload must not leave gigabytes under `_s3/uploads/`
that no listing shows. An upload's age is that of its oldest stored piece (the record is written first), so parts
left without a record (a part stored while its upload was aborted) are swept as well.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import structlog

from services.storaged.backends.base import Backend
from services.storaged.backends.parts import UPLOADS
from services.storaged.s3.multipart import remove_upload

PAGE = 1000
MAX_SWEEP_EVERY_SECS = 3600.0  # an expiry of a day is kept to within an hour


async def _upload_ages(backend: Backend) -> dict[str, datetime]:
    """Each upload id under `_s3/uploads/`, with when its oldest piece was stored."""
    began: dict[str, datetime] = defaultdict(lambda: datetime.max.replace(tzinfo=UTC))
    after: str | None = None
    while True:
        page = await backend.list(UPLOADS, after=after, limit=PAGE)
        for info in page:
            upload_id = info.key.removeprefix(UPLOADS).partition("/")[0]
            began[upload_id] = min(began[upload_id], info.last_modified)
        if len(page) < PAGE:
            return dict(began)
        after = page[-1].key


async def expire_uploads(backend: Backend, max_age: timedelta) -> list[str]:
    """Delete every upload older than `max_age`; the ids deleted."""
    cutoff = datetime.now(UTC) - max_age
    expired = sorted(upload_id for upload_id, began in (await _upload_ages(backend)).items() if began < cutoff)
    for upload_id in expired:
        await remove_upload(backend, upload_id)
    return expired


def sweep_interval(max_age: timedelta) -> float:
    """How often to sweep so that an upload outlives `max_age` by at most half of it (and at most an hour)."""
    return min(max_age.total_seconds() / 2, MAX_SWEEP_EVERY_SECS)


async def sweep_forever(backend: Backend, max_age: timedelta) -> None:
    """The background loop: sweep, sleep, repeat; a failed sweep is logged and tried again next time."""
    log = structlog.get_logger("storaged")
    while True:
        try:
            expired = await expire_uploads(backend, max_age)
        except Exception:
            log.exception("sweeping expired multipart uploads failed")
        else:
            if expired:
                log.info(
                    "expired multipart uploads deleted",
                    uploads=len(expired),
                    max_age_hours=max_age / timedelta(hours=1),
                )
        await asyncio.sleep(sweep_interval(max_age))
