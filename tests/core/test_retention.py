"""Retention: every purge runs each hour, one failing does not stop the others, and the service registers
the query log's and the conversations'."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ragapi.api.state import retention_purges
from ragapi.core.database import Database
from ragapi.core.retention import Retention
from ragapi.core.settings import Settings


async def test_a_failing_purge_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def broken() -> int:
        ran.append("broken")
        raise ConnectionError("database away")

    async def fine() -> int:
        ran.append("fine")
        return 3

    with caplog.at_level(logging.WARNING, logger="ragapi.core.retention"):
        assert await Retention({"broken": broken, "fine": fine}).purge() == {"fine": 3}
    assert ran == ["broken", "fine"]
    assert [r.purge for r in caplog.records] == ["broken"]  # type: ignore[attr-defined]


async def test_the_task_purges_at_start_and_then_every_period() -> None:
    runs = asyncio.Event()
    count = 0

    async def counted() -> int:
        nonlocal count
        count += 1
        if count == 3:
            runs.set()
        return 0

    retention = Retention({"counted": counted}, every_s=0.01)
    retention.start()
    await asyncio.wait_for(runs.wait(), 5)
    await retention.stop()
    stopped_at = count
    await asyncio.sleep(0.05)
    assert count == stopped_at  # stopped for good


async def test_the_service_purges_conversations_and_the_query_log_while_kept(settings: Settings, db: Database) -> None:
    assert set(retention_purges(settings, db)) == {"conversations", "query_log"}
    unlogged = settings.model_copy(update={"query_log_enabled": False})
    assert set(retention_purges(unlogged, db)) == {"conversations"}
    assert all(n >= 0 for n in (await Retention(retention_purges(settings, db)).purge()).values())
