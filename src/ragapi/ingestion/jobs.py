"""Durable ingestion jobs in PostgreSQL: submit, claim under a lease, finish, settle, cancel.

PostgreSQL is the source of truth in both modes; a Celery message or the in-process worker's wake-up
only says "there is work". A file row is claimed with `FOR UPDATE SKIP LOCKED` and a lease the worker
extends while it works, so a crashed worker's files return to the queue when the lease runs out.
Finishing a file checks that the caller still holds it, inside the transaction that indexes its
document: a document is committed exactly once, by the worker that owned its file at commit time.

`reclaim` (run by the API processes' queue monitor, whatever runs the workers) returns files whose
lease ran out to the queue so they can be dispatched again even when no task message exists for them
any more, and ends jobs left unsettled by a worker that died after their last file.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core.database import Database
from ragapi.core.errors import Conflict, RagApiError
from ragapi.core.inputs import strip_text
from ragapi.core.metrics import INGEST_JOB_SECONDS, INGEST_JOBS
from ragapi.core.tracing import carrier
from ragapi.ingestion.models import IngestFile, IngestJob
from ragapi.ingestion.pipeline import IngestItem, ItemResult
from ragapi.ingestion.uploads import UploadStore, upload_key
from ragapi.tenants import quotas
from ragapi.tenants.context import TenantPlan

PENDING = ("queued", "running")
TERMINAL_FILE = ("created", "replaced", "duplicate", "unchanged", "failed", "cancelled")
TERMINAL_JOB = ("succeeded", "failed", "partially_failed", "cancelled")

_CLAIMABLE = "((f.status = 'queued' AND f.not_before <= now()) OR (f.status = 'running' AND f.lease_until < now()))"
RECLAIM_LOCK = 7_270_736_902  # advisory lock key (migrations ...900, dense indexes ...901)


class LeaseLost(RagApiError):
    """The file was cancelled or taken over by another worker; this worker must not commit it."""

    status = 409
    title = "Lease lost"


@dataclass(frozen=True, slots=True)
class Progress:
    files_total: int
    files_done: int
    files_failed: int
    files_cancelled: int
    chunks_done: int

    def as_json(self) -> dict[str, int]:
        return {
            "files_total": self.files_total,
            "files_done": self.files_done,
            "files_failed": self.files_failed,
            "files_cancelled": self.files_cancelled,
            "chunks_done": self.chunks_done,
        }


async def submit(
    db: Database,
    store: UploadStore,
    tenant_id: uuid.UUID,
    items: Sequence[IngestItem],
    plan: TenantPlan | None = None,
    kb_id: uuid.UUID | None = None,
) -> IngestJob:
    """Store the uploads, then record the job and its files and charge the tenant's monthly ingest budget
    in one transaction (uploads removed if that fails), so a job the API has acknowledged always has its
    bytes, and bytes are charged only for a job that was recorded (QuotaExceeded records nothing).

    Charged, when a `plan` is given: the documents within its size limit (larger ones fail in the job,
    with the reason, without holding up the rest); URL documents when a worker has fetched them.
    The documents go into knowledge base `kb_id` (None: the tenant's default)."""
    job = IngestJob(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        knowledge_base_id=kb_id or tenant_id,
        status="queued",
        files_total=len(items),
        trace_context=carrier() or None,
    )
    keys = [upload_key(tenant_id, job.id, n) if item.data else None for n, item in enumerate(items)]

    def put_all() -> None:
        for key, item in zip(keys, items, strict=True):
            if key is not None:
                store.put(key, item.data)

    try:
        await asyncio.to_thread(put_all)
        async with db.tenant_session(tenant_id) as session:
            session.add(job)
            await session.flush()
            session.add_all(
                IngestFile(
                    job_id=job.id,
                    tenant_id=tenant_id,
                    ord=n,
                    filename=item.filename,
                    content_type=item.content_type,
                    title=item.title,
                    metadata_=item.metadata,
                    external_id=item.external_id,
                    url=item.url,
                    access=item.access.as_json() if item.access is not None else None,
                    access_by=item.access_by.setting if item.access_by is not None else None,
                    size_bytes=len(item.data),
                    blob_key=key,
                )
                for n, (key, item) in enumerate(zip(keys, items, strict=True))
            )
            if plan is not None:
                accepted = sum(len(i.data) for i in items if len(i.data) <= plan.max_document_bytes)
                await quotas.charge_in(session, tenant_id, plan, ingest_bytes=accepted)
    except BaseException:
        await asyncio.to_thread(store.delete_job, tenant_id, job.id)
        raise
    return job


async def find_job(session: AsyncSession, tenant_id: uuid.UUID, job_id: uuid.UUID) -> IngestJob | None:
    statement = select(IngestJob).where(col(IngestJob.tenant_id) == tenant_id, col(IngestJob.id) == job_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def knowledge_base_of(db: Database, tenant_id: uuid.UUID, job_id: uuid.UUID) -> uuid.UUID:
    """Where a job's documents go."""
    async with db.tenant_session(tenant_id, durable=False) as session:
        job = await find_job(session, tenant_id, job_id)
    return job.knowledge_base_id if job is not None else tenant_id


async def claim(
    db: Database,
    worker: str,
    lease_s: float,
    limit: int,
    job_id: uuid.UUID | None = None,
    file_ids: Sequence[uuid.UUID] | None = None,
) -> list[IngestFile]:
    """Claim up to `limit` files of one job: the given job, or the job served longest ago (jobs take
    turns, so one tenant's large job does not starve the others)."""
    job_filter = "AND j.id = :job" if job_id is not None else ""
    file_filter = "AND f.id = ANY(:ids)" if file_ids is not None else ""
    # A named job waits for a concurrent claim on it; "any job" skips jobs another worker is claiming.
    skip = "" if job_id is not None else "SKIP LOCKED"
    statement = text(
        f"""
        WITH job AS (
            SELECT j.id FROM ingest_jobs j
            WHERE j.finished_at IS NULL {job_filter}
              AND EXISTS (SELECT 1 FROM ingest_files f WHERE f.job_id = j.id AND {_CLAIMABLE} {file_filter})
            ORDER BY j.last_claim_at NULLS FIRST, j.created_at
            LIMIT 1 FOR UPDATE {skip}
        ), picked AS (
            SELECT f.id FROM ingest_files f JOIN job ON f.job_id = job.id
            WHERE {_CLAIMABLE} {file_filter}
            ORDER BY f.ord LIMIT :limit FOR UPDATE OF f SKIP LOCKED
        ), touched AS (
            UPDATE ingest_jobs SET last_claim_at = now(), started_at = coalesce(started_at, now()),
                status = CASE WHEN status = 'queued' THEN 'running' ELSE status END
            WHERE id IN (SELECT id FROM job)
        )
        UPDATE ingest_files f
        SET status = 'running', claimed_by = :worker, attempts = f.attempts + 1,
            lease_until = now() + make_interval(secs => :lease), started_at = coalesce(f.started_at, now())
        FROM picked WHERE f.id = picked.id
        RETURNING f.id
        """
    )
    params: dict[str, Any] = {"worker": worker, "lease": lease_s, "limit": limit}
    if job_id is not None:
        params["job"] = job_id
    if file_ids is not None:
        params["ids"] = list(file_ids)
    async with db.admin_session() as session:
        ids = [row.id for row in await session.execute(statement, params)]
        if not ids:
            return []
        rows = await session.execute(select(IngestFile).where(col(IngestFile.id).in_(ids)))
        return sorted(rows.scalars(), key=lambda f: f.ord)


async def extend_leases(db: Database, worker: str, file_ids: Sequence[uuid.UUID], lease_s: float) -> None:
    async with db.admin_session() as session:
        await session.execute(
            text(
                "UPDATE ingest_files SET lease_until = now() + make_interval(secs => :lease) "
                "WHERE id = ANY(:ids) AND claimed_by = :worker AND status = 'running'"
            ),
            {"lease": lease_s, "ids": list(file_ids), "worker": worker},
        )


async def release(db: Database, worker: str) -> None:
    """Hand back this worker's claimed files at once (a graceful stop; a crash waits for the lease)."""
    async with db.admin_session() as session:
        await session.execute(
            text(
                "UPDATE ingest_files SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "attempts = greatest(attempts - 1, 0) WHERE claimed_by = :worker AND status = 'running'"
            ),
            {"worker": worker},
        )


async def finish(session: AsyncSession, file_id: uuid.UUID, worker: str, result: ItemResult) -> None:
    """Record a file's outcome if this worker still holds it; else LeaseLost (roll the caller back)."""
    updated = await session.execute(
        text(
            "UPDATE ingest_files SET status = :status, document_id = :doc, chunks = :chunks, "
            "removed_characters = :removed, error = CAST(:error AS jsonb), finished_at = now(), lease_until = NULL "
            "WHERE id = :id AND claimed_by = :worker AND status = 'running'"
        ),
        {
            "status": result.status,
            "doc": result.document_id,
            "chunks": result.chunks,
            "removed": result.removed_characters,
            "error": _json(result.error),
            "id": file_id,
            "worker": worker,
        },
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        raise LeaseLost("this file was cancelled or claimed by another worker")


async def retry_later(
    db: Database, tenant_id: uuid.UUID, file_id: uuid.UUID, worker: str, delay_s: float, error: dict[str, Any]
) -> bool:
    """Put a file that failed transiently back in the queue, not before `delay_s` from now; False when
    this worker no longer holds it (finished, cancelled, or reclaimed after its lease)."""
    async with db.tenant_session(tenant_id) as session:
        updated = await session.execute(
            text(
                "UPDATE ingest_files SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "not_before = now() + make_interval(secs => :delay), error = CAST(:error AS jsonb) "
                "WHERE id = :id AND claimed_by = :worker AND status = 'running'"
            ),
            {"delay": delay_s, "error": _json(error), "id": file_id, "worker": worker},
        )
    return bool(updated.rowcount)  # type: ignore[attr-defined]


async def reclaim(db: Database) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
    """Return every file whose lease ran out to the queue (its attempt still counts), and settle jobs
    none of whose files is pending; the requeued files by job, for the dispatcher. One caller at a time
    across replicas (a transaction-level advisory lock): a concurrent caller gets nothing, and a file
    being claimed or finished at that moment (row locked) is left to its worker."""
    async with db.admin_session() as session:
        if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RECLAIM_LOCK}):
            return []
        rows = (
            await session.execute(
                text(
                    """
                    WITH expired AS (
                        SELECT id FROM ingest_files WHERE status = 'running' AND lease_until < now()
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE ingest_files f
                    SET status = 'queued', claimed_by = NULL, lease_until = NULL, not_before = now()
                    FROM expired WHERE f.id = expired.id
                    RETURNING f.job_id, f.id
                    """
                )
            )
        ).all()
        unsettled = (
            await session.execute(
                text(
                    "SELECT j.id, j.tenant_id FROM ingest_jobs j WHERE j.finished_at IS NULL AND NOT EXISTS "
                    "(SELECT 1 FROM ingest_files f WHERE f.job_id = j.id AND f.status IN ('queued', 'running'))"
                )
            )
        ).all()
    for job in unsettled:  # its worker died between its last file and settling it
        await settle(db, job.tenant_id, job.id)
    by_job: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        by_job.setdefault(row.job_id, []).append(row.id)
    return list(by_job.items())


async def undo_reclaim(db: Database, file_ids: Sequence[uuid.UUID]) -> None:
    """Files `reclaim` returned that could not be dispatched (the broker is down): expired again, so the
    next `reclaim` hands them out again (and any polling worker may claim them meanwhile)."""
    async with db.admin_session() as session:
        await session.execute(
            text(
                "UPDATE ingest_files SET status = 'running', lease_until = now() "
                "WHERE id = ANY(:ids) AND status = 'queued' AND claimed_by IS NULL"
            ),
            {"ids": list(file_ids)},
        )


async def settle(db: Database, tenant_id: uuid.UUID, job_id: uuid.UUID) -> str | None:
    """Give a job its final status once none of its files is pending; None while some still are."""
    async with db.tenant_session(tenant_id) as session:
        row = (
            await session.execute(
                text(
                    """
                    WITH counts AS (
                        SELECT count(*) FILTER (WHERE status IN ('queued', 'running')) AS pending,
                               count(*) FILTER (WHERE status = 'failed') AS failed,
                               count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                               count(*) AS total
                        FROM ingest_files WHERE job_id = :job
                    )
                    UPDATE ingest_jobs j SET finished_at = now(), status = CASE
                        WHEN c.cancelled > 0 THEN 'cancelled'
                        WHEN c.failed = 0 THEN 'succeeded'
                        WHEN c.failed = c.total THEN 'failed'
                        ELSE 'partially_failed' END
                    FROM counts c
                    WHERE j.id = :job AND j.finished_at IS NULL AND c.pending = 0
                    RETURNING j.status, extract(epoch FROM j.finished_at - j.created_at) AS seconds
                    """
                ),
                {"job": job_id},
            )
        ).first()
    if row is None:
        return None
    job_ended(row.status, float(row.seconds))
    return str(row.status)


def job_ended(status: str, seconds: float | None = None) -> None:
    INGEST_JOBS.labels(status).inc()
    if seconds is not None:
        INGEST_JOB_SECONDS.observe(seconds)


async def trace_context(db: Database, job_id: uuid.UUID) -> dict[str, str] | None:
    async with db.admin_session() as session:
        value = await session.scalar(text("SELECT trace_context FROM ingest_jobs WHERE id = :job"), {"job": job_id})
    return dict(value) if value else None


async def cancel(db: Database, store: UploadStore, tenant_id: uuid.UUID, job_id: uuid.UUID) -> IngestJob | None:
    """Cancel every file not yet indexed (a document being written right now is rolled back);
    documents already indexed stay. None when the tenant has no such job; Conflict once it finished."""
    async with db.tenant_session(tenant_id) as session:
        job = await session.get(IngestJob, job_id, with_for_update=True)
        if job is None or job.tenant_id != tenant_id:
            return None
        if job.finished_at is not None:
            raise Conflict(f"job already finished with status {job.status}")
        await session.execute(
            text(
                "UPDATE ingest_files SET status = 'cancelled', finished_at = now(), lease_until = NULL "
                "WHERE job_id = :job AND status IN ('queued', 'running')"
            ),
            {"job": job_id},
        )
    await asyncio.to_thread(store.delete_job, tenant_id, job_id)
    await settle(db, tenant_id, job_id)
    async with db.tenant_session(tenant_id) as session:
        return await session.get(IngestJob, job_id)


async def fail_job(db: Database, tenant_id: uuid.UUID, job_id: uuid.UUID, reason: str) -> None:
    """Fail a job that could not be handed to any worker (its files are marked failed with the reason)."""
    error = {"status": 503, "title": "Service unavailable", "detail": reason}
    async with db.tenant_session(tenant_id) as session:
        await session.execute(
            text(
                "UPDATE ingest_files SET status = 'failed', error = CAST(:error AS jsonb), finished_at = now() "
                "WHERE job_id = :job AND status IN ('queued', 'running')"
            ),
            {"job": job_id, "error": _json(error)},
        )
        await session.execute(
            text("UPDATE ingest_jobs SET error = :reason WHERE id = :job"), {"job": job_id, "reason": reason}
        )
    await settle(db, tenant_id, job_id)


async def progress_of(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Progress]:
    """Progress of several jobs in one query (a page of the job list)."""
    rows = await session.execute(
        text(
            """
            SELECT job_id,
                   count(*) AS total,
                   count(*) FILTER (WHERE status NOT IN ('queued', 'running')) AS done,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   coalesce(sum(chunks) FILTER (WHERE status IN ('created', 'replaced')), 0) AS chunks
            FROM ingest_files WHERE job_id = ANY(:jobs) GROUP BY job_id
            """
        ),
        {"jobs": list(job_ids)},
    )
    found = {r.job_id: Progress(r.total, r.done, r.failed, r.cancelled, int(r.chunks)) for r in rows}
    return {job_id: found.get(job_id, Progress(0, 0, 0, 0, 0)) for job_id in job_ids}


async def file_ids(session: AsyncSession, job_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(text("SELECT id FROM ingest_files WHERE job_id = :job ORDER BY ord"), {"job": job_id})
    return [r.id for r in rows]


async def files_of(session: AsyncSession, job_id: uuid.UUID) -> list[IngestFile]:
    rows = await session.execute(
        select(IngestFile).where(col(IngestFile.job_id) == job_id).order_by(col(IngestFile.ord))
    )
    return list(rows.scalars())


async def pending_delay(db: Database, file_ids: Sequence[uuid.UUID]) -> float | None:
    """Seconds until one of these files can be claimed again, or None when all of them are finished."""
    async with db.admin_session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT count(*) AS pending, min(CASE WHEN status = 'queued' THEN not_before "
                    "ELSE lease_until END) AS next_at, now() AS now "
                    "FROM ingest_files WHERE id = ANY(:ids) AND status IN ('queued', 'running')"
                ),
                {"ids": list(file_ids)},
            )
        ).one()
    if row.pending == 0:
        return None
    next_at: datetime | None = row.next_at
    return max((next_at - row.now).total_seconds(), 0.0) if next_at else 0.0


def _json(value: dict[str, Any] | None) -> str | None:
    return json.dumps(_storable(value)) if value is not None else None


def _storable(value: Any) -> Any:
    """`value` without the characters jsonb refuses (NUL, lone surrogates), e.g. in a quoted file name."""
    if isinstance(value, str):
        return strip_text(value)[0]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value
