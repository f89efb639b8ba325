"""What /readyz checks: every dependency a request may need, each with its latency, each bounded by
READINESS_TIMEOUT_S so a hung dependency makes the probe fail instead of hang.

Not ready (503: the replica leaves the load balancer) only for what it needs to answer queries: the
database unreachable, its schema behind this build's migrations (a rolling update waits for the
migration job), or an embedding model that cannot embed. Redis and the broker are optional for that:
limits and the exact cache fall back to in-process ones, and queries never need the broker. Their outage
makes the replica `degraded` (200, the check's error in the body, `rag_dependency_up` 0), so it does not
take every replica out of the Service at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from ragapi.core.metrics import DEPENDENCY_UP
from ragapi.core.migrate import head_revision

Check = Callable[[], Awaitable[dict[str, Any] | None]]
REQUIRED = frozenset({"database", "migrations", "model"})  # what a replica needs to answer queries


async def timed(check: Check, timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = await asyncio.wait_for(check(), timeout_s)
        result: dict[str, Any] = {"status": "ok", **(extra or {})}
    except TimeoutError:
        result = {"status": "error", "error": f"no answer within {timeout_s:g} s"}
    except NotReady as exc:
        result = {"status": "error", "error": str(exc)}
    except Exception as exc:  # a probe reports, it does not raise (nor leaks addresses from messages)
        result = {"status": "error", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


class Readiness:
    def __init__(self, state: Any) -> None:  # api.state.AppState (import cycle otherwise)
        self.state = state
        self.head = head_revision()
        self._redis: Any = None

    async def database(self) -> dict[str, Any] | None:
        async with self.state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None

    async def migrations(self) -> dict[str, Any] | None:
        async with self.state.db.engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        if current != self.head:
            raise NotReady(f"schema at {current}, this build needs {self.head}: run `ragapi migrate`")
        return {"revision": current}

    async def redis(self) -> dict[str, Any] | None:
        if self._redis is None:
            from redis.asyncio import Redis

            url = self.state.settings.redis_url.get_secret_value()
            self._redis = Redis.from_url(url, socket_timeout=self.state.settings.readiness_timeout_s)
        await self._redis.ping()
        return None

    async def broker(self) -> dict[str, Any] | None:
        await asyncio.to_thread(self.state.dispatcher.check)
        return None

    async def model(self) -> dict[str, Any] | None:
        if not self.state.ready:
            raise NotReady("starting")
        await self.state.embeddings.aembed_query("ready")
        return None

    async def report(self) -> tuple[str, dict[str, dict[str, Any]]]:
        """`ok`, `degraded` (an optional dependency failed) or `unavailable`, and every check's result."""
        settings = self.state.settings
        checks: dict[str, Check] = {"database": self.database, "migrations": self.migrations, "model": self.model}
        if settings.redis_url is not None:
            checks["redis"] = self.redis
        if settings.celery_broker_url is not None:
            checks["broker"] = self.broker
        names = list(checks)
        results = await asyncio.gather(*(timed(checks[n], settings.readiness_timeout_s) for n in names))
        report = dict(zip(names, results, strict=True))
        failed = {name for name, result in report.items() if result["status"] != "ok"}
        for name in names:
            DEPENDENCY_UP.labels(name).set(0 if name in failed else 1)
        if failed & REQUIRED:
            return "unavailable", report
        return ("degraded" if failed else "ok"), report

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class NotReady(Exception):
    """A check's own finding (shown in the report), as opposed to a dependency's error."""
