"""Retention: rows past their age deleted hourly, off the request path, by one background task per serving
process.

Each purge is a coroutine function that deletes what its setting says is old (the query log's
`QUERY_LOG_RETENTION_DAYS`, the conversations' `CONVERSATION_RETENTION_DAYS`) and returns how many rows
went. One that fails is logged and tried again the next hour; the others run regardless. Replicas purging
at once delete the same rows: the second finds none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from ragapi.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0

Purge = Callable[[], Awaitable[int]]


class Retention:
    def __init__(self, purges: Mapping[str, Purge], every_s: float = PURGE_EVERY_S) -> None:
        self.purges = dict(purges)
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def purge(self) -> dict[str, int]:
        """Run every purge once: rows deleted by name (a failed one is left out)."""
        deleted = {}
        for name, purge in self.purges.items():
            try:
                deleted[name] = await purge()
            except Exception:
                log.warning("retention purge failed", exc_info=True, extra={"purge": name})
        return deleted

    async def _run(self) -> None:
        while True:
            await self.purge()
            await asyncio.sleep(self.every_s)

    def start(self) -> None:
        if self._task is None and self.purges:
            self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
