"""A tenant's documents once indexed: read, list, change their metadata, delete them.

Every statement names the tenant and runs in its scope (row-level security backs the explicit
predicate). A document another tenant owns is as absent as one that never existed; so is one in a
knowledge base the caller's key is not allowed (`allowed`: the knowledge bases it may use, None: all).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core.access import ReaderView
from ragapi.core.database import Database
from ragapi.core.pagination import page_query, split_page
from ragapi.ingestion.chunk_store import (
    bump_knowledge_base,
    chunk_metadata,
    lock_index,
    remove_document_chunks,
)
from ragapi.ingestion.models import Document
from ragapi.retrieval.chunks import record_id, record_ids
from ragapi.retrieval.vectors.base import VectorIndex, VectorRecord, index_for, record_metadata
from ragapi.retrieval.vectors.pgvector import PgVectorIndex

Allowed = Collection[uuid.UUID] | None


async def find_document(
    session: AsyncSession, tenant_id: uuid.UUID, document_id: uuid.UUID, allowed: Allowed = None
) -> Document | None:
    statement = select(Document).where(col(Document.tenant_id) == tenant_id, col(Document.id) == document_id)
    if allowed is not None:
        statement = statement.where(col(Document.knowledge_base_id).in_(list(allowed)))
    return (await session.execute(statement)).scalar_one_or_none()


# Each chunk with the characters of those before it, cut where the limit falls: a long document's later
# chunks are never read.
_TEXT = text(
    """
    SELECT t.text FROM (
        SELECT c.text, sum(length(c.text)) OVER (ORDER BY c.ord) - length(c.text) AS before
        FROM chunks c WHERE c.tenant_id = :t AND c.document_id = :d
    ) t WHERE t.before < :max ORDER BY t.before
    """
)


async def document_text(
    db: Database, tenant_id: uuid.UUID, document_id: uuid.UUID, allowed: Allowed, max_chars: int
) -> tuple[Document, str, bool] | None:
    """The document, its chunks' text in order (a blank line between chunks, which repeat the overlap of
    the one before) cut at `max_chars` characters, and whether it was cut; None as for `get_document`.
    Read in one transaction as the request's view reads: a restricted document it may not read is
    absent, its chunks too."""
    async with db.tenant_session(tenant_id) as session:
        found = await find_document(session, tenant_id, document_id, allowed)
        if found is None:
            return None
        rows = await session.execute(_TEXT, {"t": tenant_id, "d": document_id, "max": max_chars})
        whole = "\n\n".join(rows.scalars())
    return found, whole[:max_chars], len(whole) > max_chars


async def readable(session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `ids` the session's view may read (row-level security decides)."""
    if not ids:
        return set()
    rows = await session.execute(
        select(Document.id).where(col(Document.tenant_id) == tenant_id, col(Document.id).in_(list(ids)))
    )
    return set(rows.scalars())


async def get_document(
    db: Database, tenant_id: uuid.UUID, document_id: uuid.UUID, allowed: Allowed = None
) -> Document | None:
    async with db.tenant_session(tenant_id) as session:
        return await find_document(session, tenant_id, document_id, allowed)


async def list_documents(
    db: Database,
    tenant_id: uuid.UUID,
    knowledge_bases: Collection[uuid.UUID] | None,
    cursor: str | None,
    limit: int,
    max_limit: int,
    search: str | None = None,
) -> tuple[list[Document], str | None]:
    """A page of the tenant's documents (in `knowledge_bases`, None: all of them; whose title or source
    contains `search`, case-insensitive), newest first, and the cursor of the next page (None: the last)."""
    selected = select(Document).where(col(Document.tenant_id) == tenant_id)
    if knowledge_bases is not None:
        selected = selected.where(col(Document.knowledge_base_id).in_(list(knowledge_bases)))
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        selected = selected.where(
            or_(col(Document.title).ilike(pattern, escape="\\"), col(Document.source).ilike(pattern, escape="\\"))
        )
    statement = page_query(selected, Document, cursor, limit, max_limit)
    async with db.tenant_session(tenant_id) as session:
        return split_page(list((await session.execute(statement)).scalars()), limit)


async def update_metadata(
    db: Database,
    indexes: dict[str, VectorIndex],
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    metadata: dict[str, Any],
    allowed: Allowed = None,
) -> Document | None:
    """Replace a document's metadata (one row: its chunks do not copy it) and bump the knowledge-base
    version so cached answers are not served with stale filters; no embedding.

    An external vector backend keeps a copy per record for its own filters: it is updated before the
    commit, as ingestion does, so a failure there leaves the old metadata in both places. None when the
    tenant has no such document."""
    async with db.tenant_session(tenant_id) as session:
        document = await find_document(session, tenant_id, document_id, allowed)
        if document is None:
            return None
        kb = await lock_index(session, document.knowledge_base_id)
        document.metadata_ = metadata
        session.add(document)
        await bump_knowledge_base(session, kb.id)
        if kb.vector_backend != "pgvector":
            records = [
                VectorRecord(
                    record_id(document_id, ord_),
                    [],
                    sparse,
                    record_metadata(metadata, own, document.source, document_id, kb.id),
                )
                for ord_, own, sparse in await chunk_metadata(session, tenant_id, document_id)
            ]
            await index_for(indexes, kb).replace_metadata(tenant_id, records)
        await session.flush()
        await session.refresh(document)
    return document


async def delete_document(
    db: Database,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    indexes: dict[str, VectorIndex] | None = None,
    allowed: Allowed = None,
    view: ReaderView | None = None,
) -> bool:
    """Delete a document, its chunks and its vectors; False when the tenant has no such document (as
    `view` reads, default the request's: an admin key deletes what it may not read)."""
    async with db.tenant_session(tenant_id, view=view) as session:
        document = await find_document(session, tenant_id, document_id, allowed)
        if document is None:
            return False
        kb = await lock_index(session, document.knowledge_base_id)
        removed = await remove_document_chunks(session, tenant_id, kb, document_id)
        await session.delete(document)
    if removed:
        await index_for(indexes or {"pgvector": PgVectorIndex(db, 0)}, kb).delete(
            tenant_id, record_ids(document_id, removed)
        )
    return True
