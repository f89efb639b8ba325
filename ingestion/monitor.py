"""The ingestion queue as gauges: files waiting and in progress, and how long the oldest has waited.

Measured by the API process every METRICS_QUEUE_POLL_S with one indexed query, whatever runs the
workers (in-process or Celery), so a stuck queue shows even when no worker is alive to report it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text

from core.database import Database
from core.metrics import INGEST_OLDEST, INGEST_QUEUE

log = logging.getLogger(__name__)

_DEPTH = text(
    """
    SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'running') AS running,
           coalesce(extract(epoch FROM now() - min(not_before) FILTER (
               WHERE status = 'queued' AND not_before <= now())), 0) AS oldest
    FROM ingest_files WHERE status IN ('queued', 'running')
    """
)


async def sample(db: Database) -> tuple[int, int, float]:
    async with db.admin_session() as session:
        row = (await session.execute(_DEPTH)).one()
    INGEST_QUEUE.labels("queued").set(row.queued)
    INGEST_QUEUE.labels("running").set(row.running)
    INGEST_OLDEST.set(float(row.oldest))
    return int(row.queued), int(row.running), float(row.oldest)


async def run(db: Database, interval_s: float) -> None:
    """Measure until cancelled."""
    while True:
        try:
            await sample(db)
        except Exception:  # the database may be down; the next round tries again
            log.warning("measuring the ingestion queue failed", exc_info=True)
        await asyncio.sleep(interval_s)
