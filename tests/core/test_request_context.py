"""Server-Timing entries: collected per request, bounded, and nothing outside a request."""

from __future__ import annotations

from ragapi.core import request_context


def test_entries_go_to_the_current_request_only_and_stop_at_the_bound() -> None:
    request_context.time_spent("auth", 1.25)  # no request: dropped, no error
    entries: list[str] = []
    token = request_context.server_timing.set(entries)
    try:
        with request_context.timed("limits"):
            pass
        for _ in range(request_context.MAX_TIMINGS + 5):
            request_context.time_spent("generate", 2.0)
    finally:
        request_context.server_timing.reset(token)
    assert entries[0].startswith("limits;dur=0.")
    assert entries[1] == "generate;dur=2.0"
    assert len(entries) == request_context.MAX_TIMINGS
    request_context.time_spent("auth", 1.0)
    assert len(entries) == request_context.MAX_TIMINGS
