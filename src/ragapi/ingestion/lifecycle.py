"""Changing an indexed document without re-indexing it: its metadata."""

from __future__ import annotations

import uuid
from typing import Any

from ragapi.core.database import Database
from ragapi.ingestion.chunk_store import bump_knowledge_base, chunk_metadata, lock_tenant_index
from ragapi.ingestion.lookup import find_document
from ragapi.ingestion.models import Document
from ragapi.retrieval.chunks import get_knowledge_base, record_id
from ragapi.retrieval.vectors.base import VectorIndex, VectorRecord, index_for, record_metadata


async def update_metadata(
    db: Database,
    indexes: dict[str, VectorIndex],
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    metadata: dict[str, Any],
) -> Document | None:
    """Replace a document's metadata (one row: its chunks do not copy it) and bump the knowledge-base
    version so cached answers are not served with stale filters; no embedding.

    An external vector backend keeps a copy per record for its own filters: it is updated before the
    commit, as ingestion does, so a failure there leaves the old metadata in both places. None when the
    tenant has no such document."""
    async with db.tenant_session(tenant_id) as session:
        document = await find_document(session, tenant_id, document_id)
        if document is None:
            return None
        await lock_tenant_index(session, tenant_id)
        document.metadata_ = metadata
        session.add(document)
        await bump_knowledge_base(session, tenant_id)
        kb = await get_knowledge_base(session, tenant_id)
        if kb is not None and kb.vector_backend != "pgvector":
            records = [
                VectorRecord(
                    record_id(document_id, ord_),
                    [],
                    sparse,
                    record_metadata(metadata, own, document.source, document_id),
                )
                for ord_, own, sparse in await chunk_metadata(session, tenant_id, document_id)
            ]
            await index_for(indexes, kb).replace_metadata(tenant_id, records)
        await session.flush()
        await session.refresh(document)
    return document
