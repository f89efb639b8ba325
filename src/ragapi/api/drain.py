"""Graceful shutdown: on SIGTERM the server stops accepting, and what is in flight gets a time to finish.

uvicorn already closes the listening socket and waits for open requests. What it cannot do is end an SSE
stream cleanly: a stream still running at its timeout is cancelled mid-flight and the client sees a
dropped connection. Here a stream gets until the drain deadline (`SHUTDOWN_TIMEOUT_S`) and, if it is still
open then, ends with an `error` event (503, with an SSE `retry` hint) so clients know to ask again
elsewhere. sse-starlette's own exit hook, which cuts every stream the moment the signal arrives without
a word, is switched off here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from sse_starlette import sse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragapi.api.problems import problem

sse.unpatch_uvicorn_signal_handler()  # type: ignore[no-untyped-call]  # we end streams, with a last event

log = logging.getLogger(__name__)

RETRY_MS = 1000  # the SSE `retry` field sent with the terminal event: reconnect after a second


class Drain:
    """When this process began draining, and until when streams may run. One per process (signals are)."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.deadline: float | None = None
        self._event: asyncio.Event | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self, timeout_s: float) -> None:
        """Called on the event loop (the signal handler schedules it there)."""
        if self.started_at is None:
            self.started_at = time.monotonic()
            self.deadline = self.started_at + timeout_s
            log.info("draining", extra={"timeout_s": timeout_s})
        self._signal().set()

    async def wait_started(self) -> None:
        await self._signal().wait()

    async def wait_deadline(self) -> None:
        await self.wait_started()
        assert self.deadline is not None  # noqa: S101 - set by begin()
        await asyncio.sleep(max(0.0, self.deadline - time.monotonic()))

    def reset(self) -> None:
        """For a process that serves again after a drain (tests)."""
        self.started_at = self.deadline = None
        self._event = None

    def _signal(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event


DRAIN = Drain()


def shutdown_event() -> dict[str, Any]:
    """The terminal event of a stream ended by a shutdown (sse-starlette's dict form)."""
    body = problem(503, "Server shutting down", "the server is restarting; send the request again")
    return {"event": "error", "retry": RETRY_MS, "data": json.dumps(body)}


def _encoded(event: dict[str, Any]) -> bytes:
    return f"event: {event['event']}\nretry: {event['retry']}\ndata: {event['data']}\n\n".encode()


Handler = Callable[[int, FrameType | None], Any]


def hook_signals(timeout_s: float, drain: Drain = DRAIN) -> Callable[[], None]:
    """Start draining when the server's own SIGTERM/SIGINT handler runs; returns the undo.

    Called from the lifespan, after uvicorn has installed its handlers, which still run: they close the
    listening socket and make uvicorn wait up to its graceful timeout. Only the main thread can set
    handlers; elsewhere (an in-process test client) there is no signal to follow.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        server_handler = signal.getsignal(signum)
        if not callable(server_handler):
            continue

        def handler(sig: int, frame: FrameType | None, then: Handler = server_handler) -> None:
            loop.call_soon_threadsafe(drain.begin, timeout_s)
            then(sig, frame)

        previous[signum] = signal.signal(signum, handler)

    def undo() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return undo


class DrainMiddleware:
    """Ends any SSE response still streaming at the drain deadline with a terminal `error` event.

    Works for every stream (query, job progress, LangServe) because it sits below them all: it sees the
    response's content type, and each `send` of an SSE body is whole events, so cutting between two sends
    never splits an event.
    """

    def __init__(self, app: ASGIApp, drain: Drain = DRAIN) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_task = asyncio.current_task()
        assert request_task is not None  # noqa: S101 - ASGI apps run in a task
        lock = asyncio.Lock()
        finished = False
        cut = False
        watcher: asyncio.Task[None] | None = None

        async def end_stream() -> None:
            nonlocal finished, cut
            await self.drain.wait_deadline()
            async with lock:
                if finished:
                    return
                finished = cut = True
                await send({"type": "http.response.body", "body": _encoded(shutdown_event()), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            request_task.cancel()

        async def guarded_send(message: Message) -> None:
            nonlocal finished, watcher
            async with lock:
                if finished:
                    return  # the terminal event has been sent; the app's late writes go nowhere
                if message["type"] == "http.response.start":
                    kind = dict(message.get("headers", [])).get(b"content-type", b"")
                    if kind.startswith(b"text/event-stream"):
                        watcher = asyncio.create_task(end_stream())
                elif not message.get("more_body", False):
                    finished = True
                await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except asyncio.CancelledError:
            if not cut:
                raise
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
        if cut and request_task.cancelling():
            request_task.uncancel()  # our own cancellation: the stream has ended cleanly
