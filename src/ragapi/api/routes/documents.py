"""Documents of the caller's tenant: list (cursor pagination), read, change metadata or access, delete.

Only the documents the caller may read are there at all (row-level security, `ragapi.ingestion.access`):
one it may not read is a 404 like one that does not exist; except that a caller with the admin scope
changes the access of, or deletes, any of the tenant's documents by id (an admin key reads only what is
granted to it, yet manages access)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ragapi.api.dependencies import IngestTenant, QueryTenant
from ragapi.api.params import KnowledgeBaseFilter
from ragapi.api.services import IngestionDep, KnowledgeBasesDep, ReadableDocument, SettingsDep
from ragapi.core import inputs
from ragapi.core.access import DocumentAccess
from ragapi.ingestion.metadata import check_metadata
from ragapi.ingestion.models import Document
from ragapi.schemas import (
    AccessOut,
    BulkAccessPut,
    DocumentAccessOut,
    DocumentAccessPage,
    DocumentAccessPut,
    DocumentOut,
    DocumentPage,
    DocumentPatch,
)
from ragapi.tenants.context import TenantContext

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
        access=_access_out(DocumentAccess.from_json(d.access)),
    )


def _access_out(access: DocumentAccess | None) -> AccessOut | None:
    if access is None:
        return None
    return AccessOut(users=list(access.users), groups=list(access.groups), api_keys=list(access.api_keys))


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


def _changed(d: Document, tenant: TenantContext) -> DocumentOut | DocumentAccessOut:
    """A document whose access the caller set, as the caller now reads it: whole, or (an admin key managing
    a document it may not read, or a caller that restricted one away from itself) its access alone."""
    if tenant.view.reads(d.readers):
        return _out(d)
    access = _access_out(DocumentAccess.from_json(d.access))
    return DocumentAccessOut(document_id=d.id, knowledge_base_id=d.knowledge_base_id, access=access)


@router.put("/access", response_model=DocumentAccessPage)
async def put_access_in_bulk(body: BulkAccessPut, ingestion: IngestionDep, tenant: IngestTenant) -> DocumentAccessPage:
    """One access list for several documents, all or none: 404 naming the first the caller cannot see (with
    the admin scope: the first the tenant does not have)."""
    given = body.access.model() if body.access is not None else None
    changed = await ingestion.set_access(tenant, body.document_ids, given)
    return DocumentAccessPage(items=[_changed(d, tenant) for d in changed])


@router.put("/{document_id}/access", response_model=DocumentOut | DocumentAccessOut)
async def put_access(
    document_id: uuid.UUID, body: DocumentAccessPut, ingestion: IngestionDep, tenant: IngestTenant
) -> DocumentOut | DocumentAccessOut:
    """Who may read the document besides admin users (null: the whole tenant). Takes effect on the next
    request of every reader, cached answers included; an answer already streaming keeps its sources. With
    the admin scope, any document of the tenant, readable or not; the answer shows only what the caller
    may read."""
    given = body.access.model() if body.access is not None else None
    return _changed((await ingestion.set_access(tenant, [document_id], given))[0], tenant)


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
    """With the admin scope, any document of the tenant, readable or not."""
    await ingestion.delete(tenant, document_id)
    return Response(status_code=204)
