"""Background asyncio tasks owned by a long-lived object (the worker loop, the query-log writer, the
queue monitor)."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has unwound (its `finally` blocks ran). Shutting down goes on
    even if the task had already died of an error."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
