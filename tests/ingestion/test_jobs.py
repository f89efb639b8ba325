"""Durable jobs against real PostgreSQL: leases, crashed workers, exactly-once commits, retries, cancel.

The service's own in-process worker is paused here so that each test decides who claims what.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.api.state import AppState
from ragapi.ingestion import jobs, monitor
from ragapi.ingestion.dispatch import CeleryDispatcher
from ragapi.ingestion.pipeline import IngestItem, IngestPipeline
from ragapi.ingestion.uploads import upload_key
from ragapi.ingestion.worker import IngestWorker
from tests.conftest import MakeTenant, TenantHandle
from tests.ingestion.poison import poison
from tests.services import free_port
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


async def _job_status(state: AppState, tenant: TenantHandle, job_id: uuid.UUID) -> str:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        status = await session.scalar(text("SELECT status FROM ingest_jobs WHERE id = :j"), {"j": job_id})
    return str(status)


async def test_poison_items_fail_at_once_and_the_job_ends_in_one_batch(
    paused: AppState, tenant: TenantHandle, client: httpx.AsyncClient
) -> None:
    """Every poison item fails on its first attempt with its reason (no lease wait, no retry); the
    files with NUL characters are indexed without them and say how many were removed."""
    cases = poison()
    items = [IngestItem(b"Sibling one: the ferry leaves at noon.", "one.txt"), *(item for item, *_ in cases)]
    items.append(IngestItem(b"Sibling two: the ferry returns at six.", "two.txt"))
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, items)
    worker = make_worker(paused, ingest_lease_s=300.0, ingest_task_files=len(items))
    assert (await worker.run_batch(job.id)).claimed == len(items)
    assert await _job_status(paused, tenant, job.id) == "partially_failed"
    body = (await client.get(f"/v1/ingest/jobs/{job.id}", headers=tenant.headers)).json()
    got = [(d["status"], d["error"] and d["error"]["status"], d["removed_characters"]) for d in body["documents"]]
    assert got == [("created", None, 0), *((s, e, n) for _, s, e, n in cases), ("created", None, 0)]
    assert {d["attempts"] for d in body["documents"]} == {1}
    details = [d["error"]["detail"] for d in body["documents"] if d["error"]]
    assert details[:3] == [
        "the URL is malformed: Invalid IPv6 URL",
        "the URL is malformed: Port out of range 0-65535",
        "host 'xn--bcher-kva.invalid' does not resolve",
    ]
    assert details[3:] == ["JSON is nested too deeply"] * 2


class LosesItsConnection(IngestPipeline):
    """The database server ends this pipeline's connection while it writes `doomed.txt` (once): the
    batch's transaction is gone, as when the server restarts or the network drops."""

    killed = False

    async def _write(self, session: AsyncSession, tenant_id: uuid.UUID, index: Any, p: Any, *rest: Any) -> Any:
        if p.item.filename == "doomed.txt" and not self.killed:
            self.killed = True
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
            async with self.db.admin_session() as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        return await super()._write(session, tenant_id, index, p, *rest)


async def test_a_lost_connection_requeues_the_batch_at_once(paused: AppState, tenant: TenantHandle) -> None:
    items = [*notes(2, "lost"), IngestItem(b"The doomed memo is written when the line drops.", "doomed.txt")]
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, items)
    worker = make_worker(paused, ingest_lease_s=300.0, ingest_retry_base_s=1.0)
    worker.pipeline = LosesItsConnection(paused.db, paused.embeddings, worker.settings, paused.indexes)
    assert (await worker.run_batch(job.id)).claimed == 3
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        files = await jobs.files_of(session, job.id)
        query = text("SELECT not_before - now() FROM ingest_files WHERE job_id = :j")
        waits = (await session.execute(query, {"j": job.id})).scalars().all()
    # Back in the queue with the first retry delay (1 s), not held until their 300 s lease runs out.
    assert [(f.status, f.attempts, f.claimed_by) for f in files] == [("queued", 1, None)] * 3
    assert all(f.error is not None and f.error["status"] == 503 for f in files)
    assert all(w.total_seconds() <= 1.0 for w in waits)
    assert await documents_of(paused, tenant) == []
    await asyncio.sleep(max(w.total_seconds() for w in waits) + 0.1)
    assert (await worker.run_batch(job.id)).claimed == 3
    assert await _job_status(paused, tenant, job.id) == "succeeded"
    assert len(await documents_of(paused, tenant)) == 3


async def test_an_unreadable_upload_is_retried_alone(paused: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, notes(3, "store"))
    broken = paused.settings.uploads_dir / upload_key(tenant.tenant_id, job.id, 1)
    broken.unlink()
    broken.mkdir()  # reading it raises IsADirectoryError, as a storage failure would
    try:
        worker = make_worker(paused, ingest_lease_s=300.0)
        assert (await worker.run_batch(job.id)).claimed == 3
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            files = await jobs.files_of(session, job.id)
        assert [f.status for f in files] == ["created", "queued", "created"]
        assert files[1].error is not None and "IsADirectoryError" in files[1].error["detail"]
    finally:
        broken.rmdir()
        await jobs.cancel(paused.db, paused.uploads, tenant.tenant_id, job.id)


async def test_the_reclaimer_requeues_an_expired_lease_exactly_once(quiet: AppState, tenant: TenantHandle) -> None:
    job = await jobs.submit(quiet.db, quiet.uploads, tenant.tenant_id, notes(2, "reclaim"))
    crashed = make_worker(quiet)
    claimed = await jobs.claim(quiet.db, crashed.name, 0.3, 10, job.id)  # then it "dies", its message gone
    assert [j for j, _ in await jobs.reclaim(quiet.db) if j == job.id] == []  # its lease is still live
    await asyncio.sleep(0.4)
    rounds = await asyncio.gather(*(jobs.reclaim(quiet.db) for _ in range(2)))
    handed = [f for found in rounds for job_id, files in found if job_id == job.id for f in files]
    assert sorted(handed) == sorted(f.id for f in claimed), "each file handed out once, by one caller"
    assert [j for j, _ in await jobs.reclaim(quiet.db) if j == job.id] == []
    async with quiet.db.tenant_session(tenant.tenant_id) as session:
        files = await jobs.files_of(session, job.id)
        with pytest.raises(jobs.LeaseLost):  # the crashed worker can no longer commit them
            await jobs.finish(session, claimed[0].id, crashed.name, jobs.ItemResult(0, "x", "created"))
    assert [(f.status, f.attempts, f.claimed_by) for f in files] == [("queued", 1, None)] * 2
    assert (await make_worker(quiet).run_batch(job.id)).claimed == 2


async def test_reclaimed_files_are_dispatched_or_handed_back(quiet: AppState, tenant: TenantHandle) -> None:
    """The monitor hands reclaimed files to the dispatcher; when that fails (the broker is down) they
    count as expired again and the next round hands them out."""
    job = await jobs.submit(quiet.db, quiet.uploads, tenant.tenant_id, notes(1, "handback"))
    (claimed,) = await jobs.claim(quiet.db, "dead-worker", 0.1, 10, job.id)
    await asyncio.sleep(0.2)
    dead = SecretStr(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    broker_down = CeleryDispatcher(quiet.settings.model_copy(update={"celery_broker_url": dead}))
    assert await monitor.reclaim(quiet.db, broker_down.dispatch) >= 1
    dispatched: list[tuple[uuid.UUID, list[uuid.UUID]]] = []

    async def dispatch(job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
        dispatched.append((job_id, file_ids))

    await monitor.reclaim(quiet.db, dispatch)
    assert (job.id, [claimed.id]) in dispatched


async def test_the_reclaimer_ends_a_job_whose_worker_died_before_settling_it(
    quiet: AppState, tenant: TenantHandle
) -> None:
    job = await jobs.submit(quiet.db, quiet.uploads, tenant.tenant_id, notes(1, "unsettled"))
    (claimed,) = await jobs.claim(quiet.db, "dying-worker", 30.0, 10, job.id)
    async with quiet.db.tenant_session(tenant.tenant_id) as session:  # its last file done, then it died
        await jobs.finish(session, claimed.id, "dying-worker", jobs.ItemResult(0, "x", "failed", error={"x": 1}))
    assert await _job_status(quiet, tenant, job.id) == "running"
    await jobs.reclaim(quiet.db)
    assert await _job_status(quiet, tenant, job.id) == "failed"
