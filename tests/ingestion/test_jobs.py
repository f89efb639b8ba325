"""Durable jobs against real PostgreSQL: leases, crashed workers, exactly-once commits, retries, cancel.

The service's own in-process worker is paused here so that each test decides who claims what.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from sqlalchemy import text

from api.state import AppState
from ingestion import jobs
from ingestion.pipeline import IngestItem, IngestPipeline
from ingestion.uploads import upload_key
from ingestion.worker import IngestWorker
from tests.conftest import MakeTenant, TenantHandle
from tests.wire import Recorded, Reply, wire_server


def make_worker(state: AppState, **overrides: object) -> IngestWorker:
    settings = state.settings.model_copy(update={"ingest_lease_s": 1.0, "ingest_retry_base_s": 0.2, **overrides})
    pipeline = IngestPipeline(state.db, state.embeddings, settings, state.indexes)
    return IngestWorker(state.db, pipeline, state.uploads, settings)


def notes(n: int, tag: str) -> list[IngestItem]:
    return [IngestItem(f"{tag} note {i}: the archive policy, item {i}.".encode(), f"{tag}-{i}.txt") for i in range(n)]


async def documents_of(state: AppState, tenant: TenantHandle) -> list[tuple[str, int, int]]:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        rows = await session.execute(
            text(
                "SELECT d.source, d.chunk_count, count(c.*) AS stored FROM documents d "
                "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id ORDER BY d.source"
            )
        )
        return [(r.source, r.chunk_count, r.stored) for r in rows]


async def test_a_job_waits_durably_then_one_worker_indexes_it(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(3, "durable"))
    stored = [paused.uploads.get(upload_key(tenant.tenant_id, job.id, n)) for n in range(3)]
    assert all(stored), "uploads are on disk before the job is acknowledged"
    worker = make_worker(paused)
    assert (await worker.run_batch(job.id)).claimed == 3
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        files = await jobs.files_of(session, job.id)
        progress = (await jobs.progress_of(session, [job.id]))[job.id]
    assert [f.status for f in files] == ["created"] * 3
    assert progress.files_done == 3 and progress.chunks_done == 3
    assert paused.uploads.get(files[0].blob_key or "") is None, "indexed uploads are removed"
    assert [(s, c, n) for s, c, n in await documents_of(paused, tenant)] == [
        (f"durable-{i}.txt", 1, 1) for i in range(3)
    ]


async def test_a_crashed_workers_files_return_after_the_lease(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(2, "lease"))
    crashed = make_worker(paused)
    claimed = await jobs.claim(paused.db, crashed.name, 1.0, 10, job.id)  # then it "dies"
    assert len(claimed) == 2
    survivor = make_worker(paused)
    assert (await survivor.run_batch(job.id)).claimed == 0, "a live lease is respected"
    delay = await jobs.pending_delay(paused.db, [f.id for f in claimed])
    assert delay is not None and 0 < delay <= 1.0
    await asyncio.sleep(delay + 0.1)
    assert (await survivor.run_batch(job.id)).claimed == 2
    # The crashed worker wakes up and tries to commit: the file is no longer its own.
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        with pytest.raises(jobs.LeaseLost):
            await jobs.finish(session, claimed[0].id, crashed.name, jobs.ItemResult(0, "x", "created"))
    assert [s for s, _, _ in await documents_of(paused, tenant)] == ["lease-0.txt", "lease-1.txt"]
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        files = await jobs.files_of(session, job.id)
    assert [f.attempts for f in files] == [2, 2] and {f.status for f in files} == {"created"}


async def test_a_file_that_keeps_killing_workers_fails_for_good(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(1, "poison"))
    worker = make_worker(paused, ingest_max_attempts=2, ingest_lease_s=0.2)
    for _ in range(2):  # two workers die holding it
        assert await jobs.claim(paused.db, f"doomed-{uuid.uuid4()}", 0.2, 10, job.id)
        await asyncio.sleep(0.3)
    assert (await worker.run_batch(job.id)).claimed == 1
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        (file,) = await jobs.files_of(session, job.id)
        status = (await session.execute(text("SELECT status FROM ingest_jobs WHERE id = :j"), {"j": job.id})).scalar()
    assert file.status == "failed" and file.error is not None and "failed 2 times" in file.error["detail"]
    assert status == "failed"
    assert await documents_of(paused, tenant) == []


async def test_cancel_stops_queued_files_and_keeps_indexed_ones(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(5, "cancel"))
    worker = make_worker(paused, ingest_task_files=2)
    assert (await worker.run_batch(job.id)).claimed == 2
    in_flight = await jobs.claim(paused.db, worker.name, 5.0, 1, job.id)  # being indexed when cancelled
    cancelled = await jobs.cancel(paused.db, paused.uploads, tenant.tenant_id, job.id)
    assert cancelled is not None and cancelled.status == "cancelled" and cancelled.finished_at is not None
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        with pytest.raises(jobs.LeaseLost):  # the in-flight document rolls back
            await jobs.finish(session, in_flight[0].id, worker.name, jobs.ItemResult(0, "x", "created"))
        files = await jobs.files_of(session, job.id)
    assert [f.status for f in files] == ["created", "created", "cancelled", "cancelled", "cancelled"]
    assert (await worker.run_batch(job.id)).claimed == 0
    assert [s for s, _, _ in await documents_of(paused, tenant)] == ["cancel-0.txt", "cancel-1.txt"]
    assert paused.uploads.get(files[4].blob_key or "") is None


async def test_graceful_stop_hands_claimed_files_back_at_once(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(2, "release"))
    worker = make_worker(paused, ingest_lease_s=300.0)
    assert len(await jobs.claim(paused.db, worker.name, 300.0, 10, job.id)) == 2
    await jobs.release(paused.db, worker.name)
    assert (await make_worker(paused).run_batch(job.id)).claimed == 2


async def test_two_workers_on_one_job_index_every_file_once(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(40, "race"))
    a, b = make_worker(paused, ingest_task_files=3), make_worker(paused, ingest_task_files=3)
    file_ids = await _file_ids(paused, tenant, job.id)
    delays = await asyncio.gather(a.drain(job.id, file_ids), b.drain(job.id, file_ids))
    # The first to run dry is told to come back when the other's lease would end (a Celery retry).
    assert None in delays and all(d is None or d <= 1.0 for d in delays)
    assert await jobs.pending_delay(paused.db, file_ids) is None
    docs = await documents_of(paused, tenant)
    assert len(docs) == 40 and all(c == n == 1 for _, c, n in docs)
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        statuses = {f.status for f in await jobs.files_of(session, job.id)}
    assert statuses == {"created"}


async def test_jobs_take_turns(paused: AppState, tenant: TenantHandle, make_tenant: MakeTenant) -> None:
    big = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(6, "big"))
    other = await make_tenant()
    small = await jobs.submit(paused.db, paused.uploads, other.tenant_id, notes(1, "small"))
    worker = make_worker(paused, ingest_task_files=2)
    order = [(await worker.run_batch()).job_id for _ in range(3)]
    assert order[:2] == [big.id, small.id], "a later job is served before the big one finishes"
    while (await worker.run_batch()).claimed:
        pass


async def _file_ids(state: AppState, tenant: TenantHandle, job_id: uuid.UUID) -> list[uuid.UUID]:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        return [f.id for f in await jobs.files_of(session, job_id)]


def _embedding_reply(request: Recorded) -> Reply:
    data = [{"object": "embedding", "index": i, "embedding": [0.1] * 384} for i, _ in enumerate(request.body["input"])]
    return Reply(body={"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {}})


async def test_provider_outage_is_retried_with_backoff_then_given_up(paused: AppState, tenant: TenantHandle) -> None:
    """An embedding provider answering 503 (its documented overload reply) sends the file back to the
    queue with a growing delay; it is indexed once the provider recovers, or fails with the reason."""
    outage = {"left": 1}

    def respond(request: Recorded) -> Reply:
        if outage["left"] > 0:
            outage["left"] -= 1
            return Reply(503, {"error": {"message": "overloaded", "type": "server_error"}})
        return _embedding_reply(request)

    with wire_server(respond) as server:
        embeddings = OpenAIEmbeddings(
            model="text-embedding-3-small",
            api_key=SecretStr("sk-test"),
            base_url=server.url + "/v1",
            max_retries=0,  # the SDK's own retries off: the job's retries are under test
            check_embedding_ctx_length=False,
        )
        worker = make_worker(paused, ingest_max_attempts=2)
        worker.pipeline = IngestPipeline(paused.db, embeddings, worker.settings, paused.indexes)
        job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(1, "outage"))
        assert (await worker.run_batch(job.id)).claimed == 1
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            (file,) = await jobs.files_of(session, job.id)
        assert (file.status, file.attempts) == ("queued", 1)
        assert file.error is not None and file.error["status"] == 502
        assert (await worker.run_batch(job.id)).claimed == 0, "not before its backoff"
        await asyncio.sleep(0.25)
        assert (await worker.run_batch(job.id)).claimed == 1
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            (file,) = await jobs.files_of(session, job.id)
        assert (file.status, file.attempts) == ("created", 2), file.error

        outage["left"] = 10**6  # a provider that never comes back
        job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(1, "down"))
        for _ in range(2):
            await asyncio.sleep(0.45)
            assert (await worker.run_batch(job.id)).claimed == 1
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            (file,) = await jobs.files_of(session, job.id)
        assert file.status == "failed" and file.error is not None and "embedding provider" in file.error["detail"]
