"""The job API over HTTP: 202 at once, progress by polling and by server-sent events, listing, cancel."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api.helpers import assert_problem
from tests.conftest import MakeTenant, TenantHandle


async def submit(client: httpx.AsyncClient, tenant: TenantHandle, n: int, tag: str) -> httpx.Response:
    documents = [{"text": f"{tag} memo {i}: the travel policy covers trains."} for i in range(n)]
    return await client.post("/v1/ingest", headers=tenant.headers, json={"documents": documents})


async def until_finished(client: httpx.AsyncClient, tenant: TenantHandle, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = (await client.get(f"/v1/ingest/jobs/{job_id}", headers=tenant.headers)).json()
        if job["finished_at"]:
            return dict(job)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_ingest_answers_202_and_the_job_completes(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await submit(client, tenant, 3, "accepted")
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/ingest/jobs/{body['job_id']}" == body["links"]["self"]
    assert body["status"] in ("queued", "running", "succeeded") and body["progress"]["files_total"] == 3
    job = await until_finished(client, tenant, body["job_id"])
    assert job["status"] == "succeeded"
    assert job["progress"] == {
        "files_total": 3,
        "files_done": 3,
        "files_failed": 0,
        "files_cancelled": 0,
        "chunks_done": 3,
    }
    assert [d["status"] for d in job["documents"]] == ["created"] * 3
    assert all(d["attempts"] == 1 and d["finished_at"] for d in job["documents"])
    assert job["started_at"] <= job["finished_at"]


async def test_events_stream_progress_then_done(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    job_id = (await submit(client, tenant, 2, "events")).json()["job_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    async with client.stream("GET", f"/v1/ingest/jobs/{job_id}/events", headers=tenant.headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    assert events[-1][0] == "done" and events[-1][1]["status"] == "succeeded"
    assert events[-1][1]["progress"]["files_done"] == 2
    assert all(name == "progress" for name, _ in events[:-1])


async def test_jobs_are_listed_newest_first_per_tenant(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    ids = [(await submit(client, tenant, 1, f"list{n}")).json()["job_id"] for n in range(3)]
    for job_id in ids:
        await until_finished(client, tenant, job_id)
    first = (await client.get("/v1/ingest/jobs?limit=2", headers=tenant.headers)).json()
    second = (await client.get(f"/v1/ingest/jobs?limit=2&cursor={first['next_cursor']}", headers=tenant.headers)).json()
    assert [j["job_id"] for j in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    done = (await client.get("/v1/ingest/jobs?status=succeeded", headers=tenant.headers)).json()
    assert len(done["items"]) == 3
    other = await make_tenant()
    assert (await client.get("/v1/ingest/jobs", headers=other.headers)).json()["items"] == []
    assert_problem(await client.get(f"/v1/ingest/jobs/{ids[0]}", headers=other.headers), 404)
    assert_problem(await client.get(f"/v1/ingest/jobs/{ids[0]}/events", headers=other.headers), 404)
    assert_problem(await client.post(f"/v1/ingest/jobs/{ids[0]}/cancel", headers=other.headers), 404)
    assert_problem(await client.get("/v1/ingest/jobs?status=bogus", headers=tenant.headers), 422)


async def test_cancelling_a_finished_job_is_409(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    job_id = (await submit(client, tenant, 1, "late-cancel")).json()["job_id"]
    await until_finished(client, tenant, job_id)
    problem = assert_problem(await client.post(f"/v1/ingest/jobs/{job_id}/cancel", headers=tenant.headers), 409)
    assert "succeeded" in problem["detail"]


async def test_cancel_while_running(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await submit(client, tenant, 50, "cancel-run")
    job_id = response.json()["job_id"]
    cancelled = await client.post(f"/v1/ingest/jobs/{job_id}/cancel", headers=tenant.headers)
    if cancelled.status_code == 409:  # the worker was faster than the cancel; nothing left to prove
        return
    body = cancelled.json()
    assert cancelled.status_code == 200 and body["status"] == "cancelled"
    statuses = [d["status"] for d in body["documents"]]
    assert "cancelled" in statuses and set(statuses) <= {"created", "cancelled"}
    await asyncio.sleep(0.5)  # an in-flight batch settles; nothing cancelled gets indexed afterwards
    again = (await client.get(f"/v1/ingest/jobs/{job_id}", headers=tenant.headers)).json()
    assert [d["status"] for d in again["documents"]] == statuses
    listed = (await client.get("/v1/documents?limit=100", headers=tenant.headers)).json()["items"]
    assert len(listed) == statuses.count("created")
