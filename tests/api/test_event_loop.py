"""Nothing the service does on a request blocks the event loop: parsing, password hashing and model
inference run in threads, except a short query's embedding (a few ms, QUERY_EMBEDDING_INLINE_MS).
Every callback the loop runs is timed in CPU time of the loop's thread, so being preempted by the
process's own inference threads on a busy machine does not count as blocking, and time in the
interpreter's garbage collector (which pauses every thread, wherever it strikes) is left out. A slow
callback is reported with the stack it was caught in."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.api.helpers import PASSWORD, ingest_texts
from tests.conftest import MakeUser, TenantHandle
from tests.documents import pdf_bytes

# CPU seconds one callback may spend on the loop's thread; any synchronous embedding batch, PDF parse
# or password hash below takes several times this. Wall time catches blocking I/O, with room for being
# preempted by the process's own inference threads on 2 busy cores.
SLOW_CPU_S = 0.06
SLOW_WALL_S = 1.0


@contextmanager
def slow_callbacks(cpu_s: float, wall_s: float) -> Iterator[list[str]]:
    """Record every event-loop callback that spends more than `cpu_s` CPU seconds on the loop's thread
    (garbage collection excluded) or holds it for more than `wall_s`."""
    slow: list[str] = []
    original = asyncio.Handle._run
    loop_thread = threading.get_ident()
    current: dict[str, Any] = {"started": None, "stack": None}
    collected = {"cpu": 0.0, "start": 0.0}
    stop = threading.Event()

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if threading.get_ident() == loop_thread:
            if phase == "start":
                collected["start"] = time.thread_time()
            else:
                collected["cpu"] += time.thread_time() - collected["start"]

    def watchdog() -> None:  # where the loop thread is while a callback runs long
        while not stop.wait(0.01):
            started = current["started"]
            if started is not None and current["stack"] is None and time.perf_counter() - started > cpu_s:
                frame = sys._current_frames().get(loop_thread)
                current["stack"] = "".join(traceback.format_stack(frame)[-8:]) if frame else "?"

    def timed(handle: asyncio.Handle) -> None:
        gc_before = collected["cpu"]
        current["stack"], current["started"] = None, time.perf_counter()
        cpu, wall = time.thread_time(), time.perf_counter()
        original(handle)
        current["started"] = None
        cpu = time.thread_time() - cpu - (collected["cpu"] - gc_before)
        wall = time.perf_counter() - wall
        if cpu > cpu_s or wall > wall_s:
            slow.append(f"{handle!r} used {cpu:.3f} s of CPU in {wall:.3f} s, in:\n{current['stack']}")

    gc.callbacks.append(on_gc)
    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    asyncio.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield slow
    finally:
        asyncio.Handle._run = original  # type: ignore[method-assign]
        stop.set()
        guard.join()
        gc.callbacks.remove(on_gc)


async def test_no_request_holds_the_event_loop(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser
) -> None:
    user = await make_user(tenant.tenant_id, "member")
    await ingest_texts(client, tenant, "Warm-up document about the loop.")  # first-use costs out of the way
    with slow_callbacks(SLOW_CPU_S, SLOW_WALL_S) as slow:
        pdf = pdf_bytes(["Page one of the handbook.", "Holidays: 30 days a year."], title="Handbook")
        upload = await client.post(
            "/v1/ingest?wait=true", headers=tenant.headers, files={"files": ("h.pdf", pdf, "application/pdf")}
        )
        assert upload.status_code == 200
        notes = [{"text": f"Note {n}: " + "holiday policy details and exceptions " * 30} for n in range(20)]
        assert (
            await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": notes})
        ).status_code == 200
        await asyncio.gather(
            *(
                client.post("/v1/query", headers=tenant.headers, json={"query": f"holidays per year {n}"})
                for n in range(10)
            )
        )
        await client.post("/v1/query", headers=user.headers, json={"query": "holidays?", "stream": True})
        await client.post("/v1/auth/login", data={"username": user.email, "password": PASSWORD})
        await client.get("/v1/analytics", headers=tenant.headers)
    assert slow == []
