"""The query log's writer: every answered or failed question, whichever surface asked it (REST, SSE,
LangServe, CLI) and whether the cache answered it, as `ragapi.answering` records it when an answer ends.

A background writer inserts records in batches, so logging adds no database round trip to a request.
The queue is bounded: when the database cannot keep up, records are dropped and counted
(`rag_query_log_dropped_total`) rather than growing memory without limit. Retention: rows older than
QUERY_LOG_RETENTION_DAYS are deleted hourly (`purge`, run by `ragapi.core.retention` with the other
purges), except those with feedback (they are evaluation data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from ragapi.analytics.models import QueryLog
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DROPPED = Counter("rag_query_log_dropped_total", "Query-log records dropped because the write queue was full")


class QueryLogWriter:
    def __init__(self, db: Database, settings: Settings, interval_s: float = 0.5, batch_size: int = 500) -> None:
        self.db = db
        self.settings = settings
        self.interval_s = interval_s
        self.batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def submit(self, record: dict[str, Any]) -> None:
        if len(self._buffer) >= self.settings.query_log_queue_max:
            DROPPED.inc()
            return
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything submitted so far (also used before reading the log back, e.g. feedback)."""
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
                try:
                    await self._insert(batch)
                except Exception as exc:
                    if _refused(exc):
                        # One record the database refuses fails the whole statement, and a batch mixes
                        # tenants: write it one record at a time, so that only the refused ones are lost.
                        await self._insert_each(batch)
                    else:  # the database is unreachable: drop the batch, count it, go on
                        DROPPED.inc(len(batch))
                        log.warning("writing %d query-log records failed", len(batch), exc_info=True)

    async def _insert(self, records: list[dict[str, Any]]) -> None:
        async with self.db.admin_session() as session:
            await session.execute(text("SET LOCAL synchronous_commit = off"))  # analytics, not records
            await session.execute(insert(QueryLog), records)

    async def _insert_each(self, batch: list[dict[str, Any]]) -> None:
        for n, record in enumerate(batch):
            try:
                await self._insert([record])
            except Exception as exc:
                if not _refused(exc):
                    DROPPED.inc(len(batch) - n)
                    log.warning("writing %d query-log records failed", len(batch) - n, exc_info=True)
                    return
                DROPPED.inc()
                log.warning(
                    "a query-log record was refused: %s", exc.__class__.__name__, extra={"id": str(record["id"])}
                )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="query-log-writer")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()


def _refused(exc: Exception) -> bool:
    """The database answered and refused the statement (a value it cannot store, a duplicate id), as
    opposed to not answering at all."""
    return isinstance(exc, DBAPIError) and not exc.connection_invalidated


async def purge(db: Database, retention_days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    async with db.admin_session() as session:
        result = await session.execute(
            text(
                "DELETE FROM query_log q WHERE q.created_at < :cutoff "
                "AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id)"
            ),
            {"cutoff": cutoff},
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
