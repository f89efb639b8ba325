"""The ingestion queue, watched from the API processes: gauges of the files waiting and in progress
(and how long the oldest has waited), and the reclaimer that puts files whose lease ran out back to work.

Run by every process that serves the API every METRICS_QUEUE_POLL_S, whatever runs the workers
(in-process or Celery), so a stuck queue shows, and recovers, even when no worker is alive to report it.
A file whose worker died is dispatched again although no task message exists for it any more (a Celery
task acknowledged after a crash, say): `jobs.reclaim` returns it to the queue (one replica at a time)
and the dispatcher publishes it (Celery) or wakes the in-process worker. A file whose worker died is
therefore back at work within INGEST_LEASE_S + METRICS_QUEUE_POLL_S, and fails for good at its
INGEST_MAX_ATTEMPTS-th try: workers that keep dying hold a job up at most INGEST_MAX_ATTEMPTS ×
(INGEST_LEASE_S + METRICS_QUEUE_POLL_S) beyond the time they ran (plus retry delays), never for ever.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from ragapi.core.database import Database
from ragapi.core.metrics import INGEST_OLDEST, INGEST_QUEUE, INGEST_RECLAIMED
from ragapi.ingestion import jobs

log = logging.getLogger(__name__)

Dispatch = Callable[[uuid.UUID, list[uuid.UUID]], Awaitable[None]]

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


async def reclaim(db: Database, dispatch: Dispatch) -> int:
    """Return files whose lease ran out to the queue and dispatch them; how many. Files that could not
    be dispatched (the broker is down) are left for the next round."""
    reclaimed = await jobs.reclaim(db)
    for job_id, file_ids in reclaimed:
        log.warning("job %s: %d files outlived their lease; dispatching them again", job_id, len(file_ids))
        INGEST_RECLAIMED.inc(len(file_ids))
        try:
            await dispatch(job_id, file_ids)
        except Exception:
            log.warning("job %s: could not dispatch reclaimed files; next round", job_id, exc_info=True)
            await jobs.undo_reclaim(db, file_ids)
    return sum(len(f) for _, f in reclaimed)


async def run(db: Database, interval_s: float, dispatch: Dispatch | None = None) -> None:
    """Measure (and, given a dispatcher, reclaim) until cancelled."""
    while True:
        try:
            await sample(db)
        except Exception:  # the database may be down; the next round tries again
            log.warning("measuring the ingestion queue failed", exc_info=True)
        if dispatch is not None:
            try:
                await reclaim(db, dispatch)
            except Exception:
                log.warning("reclaiming expired ingestion leases failed", exc_info=True)
        await asyncio.sleep(interval_s)
