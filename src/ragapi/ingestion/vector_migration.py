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
from ragapi.ingestion.chunk_store import lock_tenant_index
from ragapi.retrieval.bm25 import parse_sparsevec
from ragapi.retrieval.chunks import get_knowledge_base, record_id
from ragapi.retrieval.vectors.base import VectorIndex, VectorRecord, index_for


async def migrate_vectors(db: Database, indexes: dict[str, VectorIndex], tenant_id: uuid.UUID, target: str) -> int:
    """Copy every chunk vector of the tenant to `target` and switch the knowledge base to it.

    Returns the number of chunks moved (0 when the tenant is already there).
    """
    if target not in indexes:
        raise InvalidInput(f"vector backend {target!r} is not configured")
    destination = indexes[target]
    async with db.tenant_session(tenant_id) as session:
        await lock_tenant_index(session, tenant_id)
        kb = await get_knowledge_base(session, tenant_id)
        if kb is None:
            raise NotFound("this tenant has no knowledge base yet")
        if kb.vector_backend == target:
            return 0
        source = index_for(indexes, kb)
        rows = (
            await session.execute(
                text(
                    "SELECT document_id, ord, embedding::text AS embedding, sparse::text AS sparse, metadata "
                    "FROM chunks WHERE tenant_id = :t ORDER BY document_id, ord"
                ),
                {"t": tenant_id},
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
            await destination.upsert(tenant_id, [_record(r, rid) for r, rid in zip(rows, ids, strict=True)])
            await session.execute(text("UPDATE chunks SET embedding = NULL WHERE tenant_id = :t"), {"t": tenant_id})
        await session.execute(
            text("UPDATE knowledge_bases SET vector_backend = :b, version = version + 1 WHERE tenant_id = :t"),
            {"b": target, "t": tenant_id},
        )
    await source.drop_tenant(tenant_id)
    return len(rows)


def _record(row: Any, rid: str) -> VectorRecord:
    if row.embedding is None:
        raise InvalidInput(f"chunk {rid} has no dense vector in PostgreSQL")
    return VectorRecord(
        id=rid,
        dense=json.loads(row.embedding),
        sparse=parse_sparsevec(row.sparse),
        metadata={**row.metadata, "document_id": str(row.document_id)},
    )
