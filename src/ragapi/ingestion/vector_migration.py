"""Move a tenant's vectors between backends (pgvector ↔ Pinecone) without losing a query.

The tenant's knowledge-base row is locked for the whole copy, so no ingest interleaves; readers keep
using the old backend until the commit that switches `vector_backend`, and the old copy is removed only
after that commit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.ingestion.chunk_store import lock_index
from ragapi.retrieval.bm25 import parse_sparsevec
from ragapi.retrieval.chunks import record_id
from ragapi.retrieval.vectors.base import VectorIndex, VectorRecord, index_for, record_metadata


async def migrate_vectors(
    db: Database, indexes: dict[str, VectorIndex], tenant_id: uuid.UUID, target: str, kb_id: uuid.UUID | None = None
) -> int:
    """Copy every chunk vector of knowledge base `kb_id` (None: the tenant's default) to `target` and
    switch the knowledge base to it.

    Returns the number of chunks moved (0 when the knowledge base is already there).
    """
    if target not in indexes:
        raise InvalidInput(f"vector backend {target!r} is not configured")
    destination = indexes[target]
    kb_id = kb_id or tenant_id
    async with db.tenant_session(tenant_id) as session:
        try:
            kb = await lock_index(session, kb_id)
        except NotFound:
            raise NotFound("no such knowledge base") from None
        if kb.vector_backend == target:
            return 0
        source = index_for(indexes, kb)
        rows = (
            await session.execute(
                text(
                    "SELECT c.document_id, c.ord, c.embedding::text AS embedding, c.sparse::text AS sparse, "
                    "c.metadata, d.metadata AS document_metadata, d.source FROM chunks c "
                    "JOIN documents d ON d.id = c.document_id "
                    "WHERE c.tenant_id = :t AND c.knowledge_base_id = :k ORDER BY c.document_id, c.ord"
                ),
                {"t": tenant_id, "k": kb_id},
            )
        ).all()
        ids = [record_id(uuid.UUID(bytes=r.document_id.bytes), r.ord) for r in rows]
        if target == "pgvector":
            vectors = await source.fetch_dense(tenant_id, ids)  # type: ignore[attr-defined]
            missing = [rid for rid in ids if rid not in vectors]
            if missing:
                raise InvalidInput(f"{len(missing)} vectors are missing from {source.name}, e.g. {missing[0]}")
            await session.execute(
                text(
                    "UPDATE chunks SET embedding = CAST(:e AS vector) "
                    "WHERE tenant_id = :t AND document_id = :d AND ord = :o"
                ),
                [
                    {"t": tenant_id, "d": r.document_id, "o": r.ord, "e": json.dumps(vectors[rid])}
                    for r, rid in zip(rows, ids, strict=True)
                ],
            )
        else:
            await destination.upsert(tenant_id, [_record(r, rid, kb_id) for r, rid in zip(rows, ids, strict=True)])
            await session.execute(
                text("UPDATE chunks SET embedding = NULL WHERE tenant_id = :t AND knowledge_base_id = :k"),
                {"t": tenant_id, "k": kb_id},
            )
        await session.execute(
            text("UPDATE knowledge_bases SET vector_backend = :b, version = version + 1 WHERE id = :k"),
            {"b": target, "k": kb_id},
        )
    await source.delete(tenant_id, ids)  # the tenant's other knowledge bases may stay where they were
    return len(rows)


def _record(row: Any, rid: str, kb_id: uuid.UUID) -> VectorRecord:
    if row.embedding is None:
        raise InvalidInput(f"chunk {rid} has no dense vector in PostgreSQL")
    document_id = uuid.UUID(bytes=row.document_id.bytes)
    return VectorRecord(
        id=rid,
        dense=json.loads(row.embedding),
        sparse=parse_sparsevec(row.sparse),
        # what filters see, as ingestion writes it: the document's metadata, the chunk's own, the file name
        metadata=record_metadata(row.document_metadata, row.metadata, row.source, document_id, kb_id),
    )
