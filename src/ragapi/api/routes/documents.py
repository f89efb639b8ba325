"""Documents of the caller's tenant: list (cursor pagination), read, change metadata, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import col, select

from ragapi.api.dependencies import IngestTenant, QueryTenant, State
from ragapi.api.pagination import page_query, split_page
from ragapi.api.schemas import DocumentOut, DocumentPage, DocumentPatch
from ragapi.core.errors import NotFound
from ragapi.ingestion.lifecycle import update_metadata
from ragapi.ingestion.lookup import find_document
from ragapi.ingestion.metadata import check_metadata
from ragapi.ingestion.models import Document
from ragapi.ingestion.pipeline import delete_document

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _out(d: Document) -> DocumentOut:
    return DocumentOut(
        document_id=d.id,
        external_id=d.external_id,
        title=d.title,
        source=d.source,
        content_type=d.content_type,
        content_hash=d.content_hash,
        metadata=d.metadata_,
        chunks=d.chunk_count,
        size_bytes=d.size_bytes,
        created_at=d.created_at,
    )


@router.get("", response_model=DocumentPage)
async def list_documents(
    state: State,
    tenant: QueryTenant,
    limit: Annotated[int, Query(ge=1, description="Page size, at most PAGE_SIZE_MAX")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DocumentPage:
    statement = page_query(
        select(Document).where(col(Document.tenant_id) == tenant.tenant_id),
        Document,
        cursor,
        limit,
        state.settings.page_size_max,
    )
    async with state.db.tenant_session(tenant.tenant_id) as session:
        page, next_cursor = split_page(list((await session.execute(statement)).scalars()), limit)
    return DocumentPage(items=[_out(d) for d in page], next_cursor=next_cursor)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: uuid.UUID, state: State, tenant: QueryTenant) -> DocumentOut:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        document = await find_document(session, tenant.tenant_id, document_id)
    if document is None:
        raise NotFound("no such document")
    return _out(document)


@router.patch("/{document_id}", response_model=DocumentOut)
async def patch_document(
    document_id: uuid.UUID, body: DocumentPatch, state: State, tenant: IngestTenant
) -> DocumentOut:
    """Change metadata (what filters match) without re-embedding; cached answers are invalidated."""
    metadata = check_metadata(body.metadata, "metadata", state.settings)
    document = await update_metadata(state.db, state.indexes, tenant.tenant_id, document_id, metadata)
    if document is None:
        raise NotFound("no such document")
    return _out(document)


@router.delete("/{document_id}", status_code=204)
async def remove_document(document_id: uuid.UUID, state: State, tenant: IngestTenant) -> Response:
    if not await delete_document(state.db, tenant.tenant_id, document_id, state.indexes):
        raise NotFound("no such document")
    return Response(status_code=204)
