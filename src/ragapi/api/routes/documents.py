"""Documents of the caller's tenant: list (cursor pagination), read, change metadata, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ragapi.api.dependencies import IngestTenant, QueryTenant
from ragapi.api.params import KnowledgeBaseFilter
from ragapi.api.services import IngestionDep, KnowledgeBasesDep, ReadableDocument, SettingsDep
from ragapi.core import inputs
from ragapi.ingestion.metadata import check_metadata
from ragapi.ingestion.models import Document
from ragapi.schemas import DocumentOut, DocumentPage, DocumentPatch

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _out(d: Document) -> DocumentOut:
    return DocumentOut(
        document_id=d.id,
        knowledge_base_id=d.knowledge_base_id,
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
    ingestion: IngestionDep,
    knowledge_bases: KnowledgeBasesDep,
    tenant: QueryTenant,
    limit: Annotated[int, Query(ge=1, description="Page size, at most PAGE_SIZE_MAX")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    knowledge_base: KnowledgeBaseFilter = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Only documents whose title or source contains this")
    ] = None,
) -> DocumentPage:
    """Newest first; of one knowledge base, or of every one the caller may use."""
    kb_ids = await knowledge_bases.ids(tenant, (knowledge_base,)) if knowledge_base is not None else None
    page, next_cursor = await ingestion.documents(tenant, kb_ids, cursor, limit, inputs.check(search, "search"))
    return DocumentPage(items=[_out(d) for d in page], next_cursor=next_cursor)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document: ReadableDocument) -> DocumentOut:
    return _out(document)


@router.patch("/{document_id}", response_model=DocumentOut)
async def patch_document(
    document_id: uuid.UUID, body: DocumentPatch, ingestion: IngestionDep, settings: SettingsDep, tenant: IngestTenant
) -> DocumentOut:
    """Change metadata (what filters match) without re-embedding; cached answers are invalidated."""
    metadata = check_metadata(body.metadata, "metadata", settings)
    return _out(await ingestion.update_metadata(tenant, document_id, metadata))


@router.delete("/{document_id}", status_code=204)
async def remove_document(document_id: uuid.UUID, ingestion: IngestionDep, tenant: IngestTenant) -> Response:
    await ingestion.delete(tenant, document_id)
    return Response(status_code=204)
