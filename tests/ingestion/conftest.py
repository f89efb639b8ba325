from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ragapi.api.state import AppState


@pytest.fixture
async def paused(app_state: AppState) -> AsyncIterator[AppState]:
    """The service's own in-process ingestion worker stopped, so the test decides who claims what."""
    await app_state.stop_worker()
    try:
        yield app_state
    finally:
        app_state.start_worker()


@pytest.fixture
async def quiet(paused: AppState) -> AsyncIterator[AppState]:
    """`paused`, and the queue monitor stopped too, so that the test alone reclaims expired leases."""
    await paused.stop_monitor()
    try:
        yield paused
    finally:
        paused.start_monitor()
