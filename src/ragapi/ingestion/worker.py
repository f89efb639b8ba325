"""The ingestion worker: claim a batch of files, index them, record each outcome. The same code runs
inside `ragapi serve` (embedded, no broker) and inside Celery tasks (`ragapi worker`).

Transient failures (provider or network errors) go back to the queue with exponential backoff;
anything else fails the file with its reason, at once, while the rest of its batch goes on. When the
batch as a whole fails (the database went away, say), its unfinished files go back to the queue with
the same backoff at once rather than when their lease runs out. A file whose worker keeps dying (out
of memory, killed) comes back after its lease and fails for good after INGEST_MAX_ATTEMPTS tries, so
no file can wedge a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.core import tracing
from ragapi.core.access import DocumentAccess, ReaderView
from ragapi.core.database import Database
from ragapi.core.metrics import INGEST_BATCH_SECONDS, INGEST_CHUNKS, INGEST_DOCUMENTS, INGEST_REMOVED_CHARACTERS
from ragapi.core.settings import Settings
from ragapi.ingestion import jobs
from ragapi.ingestion.models import IngestFile
from ragapi.ingestion.pipeline import TRANSIENT_STATUSES, IngestItem, IngestPipeline, ItemResult, OnWritten
from ragapi.ingestion.uploads import UploadStore
from ragapi.tenants import quotas
from ragapi.tenants.plans import plan_for
from ragapi.tenants.service import get_tenant

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    job_id: uuid.UUID | None
    claimed: int


class IngestWorker:
    def __init__(self, db: Database, pipeline: IngestPipeline, store: UploadStore, settings: Settings) -> None:
        self.db = db
        self.pipeline = pipeline
        self.store = store
        self.settings = settings
        self.name = worker_name()
        self._wake = asyncio.Event()

    # --- the loop `ragapi serve` runs ---

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        """Work until cancelled; between batches, sleep until woken or the poll interval passes."""
        log.info("ingestion worker %s started", self.name)
        while True:
            try:
                outcome = await self.run_batch()
            except asyncio.CancelledError:  # shutting down: what was in flight rolled back; hand it back
                await jobs.release(self.db, self.name)
                raise
            except Exception:  # the database went away, say; files come back after their lease
                log.exception("ingestion batch failed")
                outcome = BatchOutcome(None, 0)
            if outcome.claimed == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.ingest_poll_s)

    # --- what a Celery task runs ---

    async def drain(self, job_id: uuid.UUID, file_ids: Sequence[uuid.UUID]) -> float | None:
        """Process these files until none is claimable; the delay before a retry when some are still
        pending (backing off, or held by another worker's lease), None when all are finished."""
        while (await self.run_batch(job_id, file_ids)).claimed:
            pass
        delay = await jobs.pending_delay(self.db, file_ids)
        return None if delay is None else max(delay, 0.5)

    # --- one batch ---

    async def run_batch(
        self, job_id: uuid.UUID | None = None, file_ids: Sequence[uuid.UUID] | None = None
    ) -> BatchOutcome:
        s = self.settings
        files = await jobs.claim(self.db, self.name, s.ingest_lease_s, s.ingest_task_files, job_id, file_ids)
        if not files:
            return BatchOutcome(job_id, 0)
        heartbeat = asyncio.create_task(self._heartbeat([f.id for f in files]))
        started = time.perf_counter()
        try:
            stored = await jobs.trace_context(self.db, files[0].job_id) if tracing.active() else None
            with tracing.consumer_span(
                "ingest.batch", stored, tenant=files[0].tenant_id, job_id=files[0].job_id, files=len(files)
            ):
                await self._process(files)
        except Exception as exc:  # the batch as a whole: the database went away, say
            log.exception("ingestion batch of job %s failed; its unfinished files are requeued", files[0].job_id)
            await self._requeue(files, exc)
        finally:
            heartbeat.cancel()
            INGEST_BATCH_SECONDS.observe(time.perf_counter() - started)
        await jobs.settle(self.db, files[0].tenant_id, files[0].job_id)
        return BatchOutcome(files[0].job_id, len(files))

    async def _heartbeat(self, file_ids: list[uuid.UUID]) -> None:
        while True:
            await asyncio.sleep(self.settings.ingest_lease_s / 3)
            try:
                await jobs.extend_leases(self.db, self.name, file_ids, self.settings.ingest_lease_s)
            except Exception:  # a missed beat only shortens the lease
                log.warning("could not extend ingestion leases", exc_info=True)

    async def _process(self, files: list[IngestFile]) -> None:
        tenant_id = files[0].tenant_id
        tenant = await get_tenant(self.db, tenant_id)
        plan = plan_for(tenant, self.settings)
        ready: list[IngestFile] = []
        for f in files:
            if f.size_bytes > plan.max_document_bytes:
                detail = f"{f.filename or f'document {f.ord}'} is {f.size_bytes} bytes; this tenant's plan allows "
                await self._record(f, _failed(f, 413, "Payload too large", f"{detail}{plan.max_document_bytes}"))
            elif f.attempts > self.settings.ingest_max_attempts:
                last = (f.error or {}).get("detail", "the worker stopped while processing it")
                await self._record(f, _failed(f, 500, "Gave up", f"failed {f.attempts - 1} times; last: {last}"))
            else:
                ready.append(f)
        loaded = await asyncio.to_thread(self._load, ready)
        by_index = dict(enumerate(ready))
        committed: set[int] = set()

        async def on_written(session: AsyncSession, result: ItemResult) -> None:
            await jobs.finish(session, by_index[result.index].id, self.name, result)
            committed.add(result.index)

        present: list[tuple[int, IngestItem]] = []
        requeued: set[uuid.UUID] = set()
        for n, item in enumerate(loaded):
            if item is None:
                await self._record(ready[n], _failed(ready[n], 500, "Upload lost", "the stored upload is missing"))
            elif isinstance(item, Exception):  # the store failed for this file: retried like a provider error
                detail = f"the stored upload could not be read ({type(item).__name__})"
                log.warning("file %s: %s", ready[n].id, detail, exc_info=item)
                if not await self._settle_file(ready[n], _failed(ready[n], 503, "Service unavailable", detail)):
                    requeued.add(ready[n].id)
            else:
                present.append((n, item))
        sent = sum(len(item.data) for _, item in present)
        results = await self.pipeline.process(
            tenant_id,
            [item for _, item in present],
            fetch_max_bytes=plan.max_document_bytes,
            on_written=_reindexed(on_written, [n for n, _ in present]),
            kb_id=await jobs.knowledge_base_of(self.db, tenant_id, files[0].job_id),
        )
        fetched = sum(len(item.data) for _, item in present) - sent
        if fetched:  # URL documents are charged once their size is known
            await quotas.charge(self.db, tenant_id, plan.unlimited_ingest(), ingest_bytes=fetched)
        for position, (n, _) in enumerate(present):
            result = results.get(position) or _failed(
                ready[n], 500, "Internal error", "the pipeline recorded no outcome for this file"
            )
            if n in committed and result.status != "failed":  # recorded in its document's transaction
                _count(result)
                continue
            result.index = n
            if not await self._settle_file(ready[n], result):
                requeued.add(ready[n].id)
        for f in files:
            if f.blob_key and f.id not in requeued:  # finished files' uploads are no longer needed
                await self._discard(f.blob_key)

    async def _settle_file(self, f: IngestFile, result: ItemResult) -> bool:
        """Record the outcome; False when the file stays pending (retry, or another worker owns it)."""
        error = result.error or {}
        if result.status == "failed" and error.get("status") == jobs.LeaseLost.status:
            return False  # cancelled (its upload went with it), or another worker owns it now
        transient = result.status == "failed" and error.get("status") in TRANSIENT_STATUSES
        if transient and f.attempts < self.settings.ingest_max_attempts:
            delay = self.settings.ingest_retry_base_s * 2 ** (f.attempts - 1)
            if await jobs.retry_later(self.db, f.tenant_id, f.id, self.name, delay, error):
                log.warning("file %s failed transiently (%s); retrying in %.1f s", f.id, error.get("detail"), delay)
                INGEST_DOCUMENTS.labels("retried").inc()
            return False
        await self._record(f, result)
        return True

    async def _requeue(self, files: list[IngestFile], exc: Exception) -> None:
        """After the whole batch failed: each claimed file not finished yet goes back to the queue with
        backoff, or fails for good past INGEST_MAX_ATTEMPTS, now rather than when its lease runs out.
        Files already finished are left as they are (the statements check that this worker still holds
        them). If the database refuses even this, the leases bring the files back."""
        detail = f"the ingestion batch failed ({type(exc).__name__})"
        for f in files:
            try:
                if await self._settle_file(f, _failed(f, 503, "Service unavailable", detail)) and f.blob_key:
                    await self._discard(f.blob_key)
            except Exception:
                log.warning("could not hand back job %s's files; their leases will expire", f.job_id, exc_info=True)
                return

    async def _discard(self, blob_key: str) -> None:
        """Remove a finished file's upload; one that cannot be removed now only takes space."""
        try:
            await asyncio.to_thread(self.store.delete, blob_key)
        except Exception:
            log.warning("could not remove the upload %s", blob_key, exc_info=True)

    async def _record(self, f: IngestFile, result: ItemResult) -> None:
        try:
            async with self.db.tenant_session(f.tenant_id) as session:
                await jobs.finish(session, f.id, self.name, result)
        except jobs.LeaseLost:
            return
        _count(result)

    def _load(self, files: list[IngestFile]) -> list[IngestItem | Exception | None]:
        """Each file as an item; None when its upload is gone, the exception when reading it failed."""
        items: list[IngestItem | Exception | None] = []
        for f in files:
            try:
                data = self.store.get(f.blob_key) if f.blob_key else b""
            except Exception as exc:  # that file's failure, recorded by the caller
                items.append(exc)
                continue
            if data is None:
                items.append(None)
                continue
            items.append(
                IngestItem(
                    data=data,
                    filename=f.filename,
                    content_type=f.content_type,
                    title=f.title,
                    metadata=dict(f.metadata_),
                    external_id=f.external_id,
                    url=f.url,
                    access=DocumentAccess.from_json(f.access),
                    access_by=ReaderView.from_setting(f.access_by) if f.access_by is not None else None,
                )
            )
        return items


def _count(result: ItemResult) -> None:
    INGEST_DOCUMENTS.labels("failed" if result.status == "failed" else "indexed").inc()
    INGEST_CHUNKS.inc(result.chunks)
    if result.removed_characters:
        INGEST_REMOVED_CHARACTERS.inc(result.removed_characters)


def _reindexed(on_written: OnWritten, positions: list[int]) -> OnWritten:
    """The pipeline numbers the items it was given; map its numbers back to the claimed files'."""

    async def hook(session: AsyncSession, result: ItemResult) -> None:
        result.index = positions[result.index]
        await on_written(session, result)

    return hook


def _failed(f: IngestFile, status: int, title: str, detail: str) -> ItemResult:
    return ItemResult(
        index=f.ord, filename=f.filename, status="failed", error={"status": status, "title": title, "detail": detail}
    )
