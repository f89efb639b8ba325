"""Changing an indexed document without re-indexing it: its metadata."""

from __future__ import annotations

import uuid
from typing import Any

from chains.index import get_knowledge_base, lock_tenant_index, record_id, set_document_metadata
from chains.vector_index import VectorIndex, VectorRecord, index_for
from core.database import Database
from ingestion.lookup import find_document
from ingestion.models import Document


async def update_metadata(
    db: Database,
    indexes: dict[str, VectorIndex],
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    metadata: dict[str, Any],
) -> Document | None:
    """Replace a document's metadata everywhere filters read it, in one transaction; no embedding.

    An external vector backend is updated before the commit, as ingestion does, so a failure there
    leaves the old metadata in both places. None when the tenant has no such document."""
    async with db.tenant_session(tenant_id) as session:
        document = await find_document(session, tenant_id, document_id)
        if document is None:
            return None
        await lock_tenant_index(session, tenant_id)
        chunks = await set_document_metadata(session, tenant_id, document_id, document.metadata_, metadata)
        document.metadata_ = metadata
        session.add(document)
        kb = await get_knowledge_base(session, tenant_id)
        if kb is not None:
            records = [
                VectorRecord(record_id(document_id, ord_), [], sparse, {**meta, "document_id": str(document_id)})
                for ord_, meta, sparse in chunks
            ]
            await index_for(indexes, kb).replace_metadata(tenant_id, records)
        await session.flush()
        await session.refresh(document)
    return document
