"""Nothing the service does on a request blocks the event loop: model inference, parsing and password
hashing run in threads. asyncio's debug mode reports every callback that holds the loop too long."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from tests.api.helpers import PASSWORD, ingest_texts
from tests.conftest import MakeUser, TenantHandle
from tests.documents import pdf_bytes

# Wall time, so it includes being preempted by the process's own inference threads: 0.2 s leaves room
# for that on 2 busy cores while any synchronous embedding batch or parse below would exceed it.
SLOW_S = 0.2


async def test_no_request_holds_the_event_loop(
    client: httpx.AsyncClient, tenant: TenantHandle, make_user: MakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(tenant.tenant_id, "member")
    await ingest_texts(client, tenant, "Warm-up document about the loop.")  # first-use costs out of the way
    loop = asyncio.get_running_loop()
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_S
    try:
        pdf = pdf_bytes(["Page one of the handbook.", "Holidays: 30 days a year."], title="Handbook")
        upload = await client.post(
            "/v1/ingest", headers=tenant.headers, files={"files": ("h.pdf", pdf, "application/pdf")}
        )
        assert upload.status_code == 200
        notes = [{"text": f"Note {n}: " + "holiday policy details and exceptions " * 30} for n in range(20)]
        assert (await client.post("/v1/ingest", headers=tenant.headers, json={"documents": notes})).status_code == 200
        await asyncio.gather(
            *(
                client.post("/v1/query", headers=tenant.headers, json={"query": f"holidays per year {n}"})
                for n in range(10)
            )
        )
        await client.post("/v1/query", headers=user.headers, json={"query": "holidays?", "stream": True})
        await client.post("/v1/auth/login", data={"username": user.email, "password": PASSWORD})
        await client.get("/v1/analytics", headers=tenant.headers)
    finally:
        loop.set_debug(False)
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]
    assert slow == []
