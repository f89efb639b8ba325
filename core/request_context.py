"""Per-request values that logs and background records pick up (context variables, so they follow the
request through awaits and into `asyncio.to_thread`)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
tenant_id: ContextVar[str] = ContextVar("tenant_id", default="")
principal: ContextVar[str] = ContextVar("principal", default="")  # "key:<id>" | "user:<id>"


def current_request_id() -> str:
    return request_id.get()
