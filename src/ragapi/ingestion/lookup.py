"""Tenant-scoped reads of documents and jobs (the tenant predicate is explicit; RLS backs it up)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.ingestion.models import Document, IngestJob


async def find_document(session: AsyncSession, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Document | None:
    statement = select(Document).where(col(Document.tenant_id) == tenant_id, col(Document.id) == document_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def find_job(session: AsyncSession, tenant_id: uuid.UUID, job_id: uuid.UUID) -> IngestJob | None:
    statement = select(IngestJob).where(col(IngestJob.tenant_id) == tenant_id, col(IngestJob.id) == job_id)
    return (await session.execute(statement)).scalar_one_or_none()
