"""Per-request values that logs and background records pick up (context variables, so they follow the
request through awaits and into `asyncio.to_thread`), and the request's Server-Timing entries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
tenant_id: ContextVar[str] = ContextVar("tenant_id", default="")
principal: ContextVar[str] = ContextVar("principal", default="")  # "key:<id>" | "user:<id>"
# One list per request (the middleware sets it); tasks the request starts share it, copied contexts too.
server_timing: ContextVar[list[str] | None] = ContextVar("server_timing", default=None)
MAX_TIMINGS = 24  # a header, not a trace: the stages of one answer fit, a long stream cannot grow it


def current_request_id() -> str:
    return request_id.get()


def time_spent(name: str, ms: float) -> None:
    """A `Server-Timing` entry for the current request; outside a request (CLI, worker) nothing."""
    entries = server_timing.get()
    if entries is not None and len(entries) < MAX_TIMINGS:
        entries.append(f"{name};dur={ms:.1f}")


@contextmanager
def timed(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        time_spent(name, (time.perf_counter() - started) * 1000)
