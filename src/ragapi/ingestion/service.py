"""Ingestion as the API uses it: submit a job and hand it to the workers, follow it, cancel it, and a
tenant's indexed documents. The routes only translate HTTP to these calls."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from ragapi.core.access import EVERYTHING, DocumentAccess
from ragapi.core.database import Database
from ragapi.core.errors import NotFound, ServiceUnavailable
from ragapi.core.pagination import page_query, split_page
from ragapi.core.settings import Settings
from ragapi.ingestion import access, documents, jobs
from ragapi.ingestion.dispatch import Dispatcher
from ragapi.ingestion.models import Document, IngestFile, IngestJob
from ragapi.ingestion.pipeline import IngestItem
from ragapi.ingestion.uploads import UploadStore
from ragapi.retrieval.chunks import Candidate, Hit, read_hits
from ragapi.retrieval.vectors.base import VectorIndex
from ragapi.tenants.context import TenantContext


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its owner follows it: its row, its progress, and (when asked for) its files."""

    job: IngestJob
    progress: jobs.Progress
    files: list[IngestFile]
    # documents its files made that the caller may not read: shown without their name, and without their
    # id unless the caller manages access (it needs the id to change the access or delete the document)
    hidden: frozenset[uuid.UUID] = frozenset()
    manages_access: bool = False

    @property
    def finished(self) -> bool:
        return self.job.finished_at is not None


class IngestionService:
    def __init__(
        self,
        db: Database,
        uploads: UploadStore,
        dispatcher: Dispatcher,
        indexes: dict[str, VectorIndex],
        settings: Settings,
    ) -> None:
        self.db = db
        self.uploads = uploads
        self.dispatcher = dispatcher
        self.indexes = indexes
        self.settings = settings

    # --- jobs ---

    async def submit(self, tenant: TenantContext, items: Sequence[IngestItem], kb_id: uuid.UUID) -> IngestJob:
        """Record the job (its uploads stored, the tenant's ingest quota charged) and hand it to the
        workers; a broker that cannot take it fails the job with the reason (ServiceUnavailable). The
        documents go into knowledge base `kb_id` (`KnowledgeBaseService.target`). Bytes the knowledge base
        holds already take the access they come with, if the caller could set it by PUT."""
        for given in {item.access for item in items}:
            await access.validate(self.db, tenant.tenant_id, given, self.settings.max_access_entries)
        submitter = EVERYTHING if tenant.manages_access else tenant.view
        for item in items:
            item.access_by = submitter
        job = await jobs.submit(self.db, self.uploads, tenant.tenant_id, items, plan=tenant.plan, kb_id=kb_id)
        async with self.db.tenant_session(tenant.tenant_id, durable=False) as session:
            file_ids = await jobs.file_ids(session, job.id)
        try:
            await self.dispatcher.dispatch(job.id, file_ids)
        except ServiceUnavailable as exc:
            await jobs.fail_job(self.db, tenant.tenant_id, job.id, exc.detail)
            raise
        return job

    async def job(self, tenant: TenantContext, job_id: uuid.UUID, files: bool = False) -> JobView:
        """NotFound when the tenant has no such job (or it ingests into a knowledge base the caller's key
        may not use)."""
        tenant_id = tenant.tenant_id
        async with self.db.tenant_session(tenant_id, durable=False) as session:
            job = await jobs.find_job(session, tenant_id, job_id)
            if job is None or not tenant.may_use(job.knowledge_base_id):
                raise NotFound("no such ingest job")
            progress = (await jobs.progress_of(session, [job_id]))[job_id]
            listed = await jobs.files_of(session, job_id) if files else []
            made = {f.document_id for f in listed if f.document_id is not None}
            readable = await documents.readable(session, tenant_id, made)
        return JobView(job, progress, listed, frozenset(made - readable), tenant.manages_access)

    async def jobs(
        self, tenant: TenantContext, status: str | None, cursor: str | None, limit: int
    ) -> tuple[list[JobView], str | None]:
        """A page of the tenant's jobs, newest first (optionally of one status), and the next cursor."""
        tenant_id = tenant.tenant_id
        statement = select(IngestJob).where(col(IngestJob.tenant_id) == tenant_id)
        if tenant.knowledge_base_ids is not None:
            statement = statement.where(col(IngestJob.knowledge_base_id).in_(list(tenant.knowledge_base_ids)))
        if status:
            statement = statement.where(col(IngestJob.status) == status)
        statement = page_query(statement, IngestJob, cursor, limit, self.settings.page_size_max)
        async with self.db.tenant_session(tenant_id, durable=False) as session:
            page, next_cursor = split_page(list((await session.execute(statement)).scalars()), limit)
            progress = await jobs.progress_of(session, [job.id for job in page])
        return [JobView(job, progress[job.id], []) for job in page], next_cursor

    async def wait(self, tenant: TenantContext, job_id: uuid.UUID) -> JobView:
        """The job with its files once it has finished, or as it is after INGEST_WAIT_MAX_S."""
        deadline = time.monotonic() + self.settings.ingest_wait_max_s
        pause = 0.02
        while True:
            view = await self.job(tenant, job_id)
            if view.finished or time.monotonic() >= deadline:
                return await self.job(tenant, job_id, files=True)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.settings.ingest_poll_s)

    async def cancel(self, tenant: TenantContext, job_id: uuid.UUID) -> JobView:
        """Files not yet indexed are cancelled; documents already indexed stay. NotFound: no such job;
        Conflict: it has finished."""
        await self.job(tenant, job_id)  # the caller's to see
        if await jobs.cancel(self.db, self.uploads, tenant.tenant_id, job_id) is None:
            raise NotFound("no such ingest job")
        return await self.job(tenant, job_id, files=True)

    # --- documents ---

    async def document(self, tenant: TenantContext, document_id: uuid.UUID) -> Document:
        """NotFound when the tenant has no such document (another tenant's included, and one in a
        knowledge base the caller's key may not use)."""
        found = await documents.get_document(self.db, tenant.tenant_id, document_id, tenant.knowledge_base_ids)
        if found is None:
            raise NotFound("no such document")
        return found

    async def document_text(self, tenant: TenantContext, document_id: uuid.UUID) -> tuple[Document, str, bool]:
        """The document, its text (its chunks' in order) up to MCP_DOCUMENT_MAX_CHARS characters, and
        whether it was cut there: NotFound as for `document`, and for a restricted document the caller
        may not read."""
        found = await documents.document_text(
            self.db, tenant.tenant_id, document_id, tenant.knowledge_base_ids, self.settings.mcp_document_max_chars
        )
        if found is None:
            raise NotFound("no such document")
        return found

    async def documents(
        self,
        tenant: TenantContext,
        kb_ids: Collection[uuid.UUID] | None,
        cursor: str | None,
        limit: int,
        search: str | None = None,
    ) -> tuple[list[Document], str | None]:
        """A page of documents in `kb_ids` (None: every knowledge base the caller may use), whose title or
        source contains `search` when given."""
        scope = kb_ids if kb_ids is not None else tenant.knowledge_base_ids
        return await documents.list_documents(
            self.db, tenant.tenant_id, scope, cursor, limit, self.settings.page_size_max, search
        )

    async def passage(self, tenant: TenantContext, chunk_id: uuid.UUID) -> Hit:
        """A cited chunk in full, with its document's title: NotFound as for its document."""
        async with self.db.tenant_session(tenant.tenant_id) as session:
            hits = await read_hits(session, tenant.tenant_id, [Candidate(chunk_id, 1.0)], {})
        if not hits:
            raise NotFound("no such passage")
        await self.document(tenant, hits[0].document_id)  # a key kept to some knowledge bases sees only theirs
        return hits[0]

    async def update_metadata(
        self, tenant: TenantContext, document_id: uuid.UUID, metadata: dict[str, Any]
    ) -> Document:
        """Replace a document's metadata (what filters match) without re-embedding it."""
        found = await documents.update_metadata(
            self.db, self.indexes, tenant.tenant_id, document_id, metadata, tenant.knowledge_base_ids
        )
        if found is None:
            raise NotFound("no such document")
        return found

    async def set_access(
        self, tenant: TenantContext, document_ids: Sequence[uuid.UUID], given: DocumentAccess | None
    ) -> list[Document]:
        """Give documents the caller can see (any of the tenant's, if it manages access) this access list
        (None: the whole tenant). The documents come back whole: what the caller may see of them is the
        route's to show (`ReaderView.reads`)."""
        allowed = sorted(tenant.knowledge_base_ids) if tenant.knowledge_base_ids is not None else None
        return await access.set_access(
            self.db,
            tenant.tenant_id,
            document_ids,
            given,
            self.settings.max_access_entries,
            allowed,
            manage=tenant.manages_access,
        )

    async def delete(self, tenant: TenantContext, document_id: uuid.UUID) -> None:
        """NotFound unless the caller can read the document, or manages access."""
        deleted = await documents.delete_document(
            self.db,
            tenant.tenant_id,
            document_id,
            self.indexes,
            tenant.knowledge_base_ids,
            view=EVERYTHING if tenant.manages_access else None,
        )
        if not deleted:
            raise NotFound("no such document")
