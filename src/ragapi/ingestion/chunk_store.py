"""The write side of the chunk store: a document's chunks with their vectors and BM25 weights, the tenant's
document frequencies and its knowledge-base row (counts and version), all in the ingesting transaction.

Every write takes the tenant's knowledge-base row first (`lock_knowledge_base`), so a tenant's writers
serialise and the BM25 statistics cannot deadlock; every write bumps the knowledge base's version, which
partitions the answer cache, so no cached answer outlives the chunks it cites. The read side is
`ragapi.retrieval.chunks`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.retrieval.bm25 import parse_sparsevec, to_sparsevec
from ragapi.retrieval.chunks import KB_COLUMNS, KnowledgeBase, vector_literal

_KB_SELECT = f"SELECT {', '.join(KB_COLUMNS)} FROM knowledge_bases WHERE tenant_id = :t"


@dataclass(slots=True)
class ChunkRow:
    ord: int
    text: str
    title: str
    metadata: dict[str, Any]
    embedding: Sequence[float]
    weights: dict[int, float]  # BM25 document weights: the sparse vector
    token_count: int
    id: uuid.UUID = field(default_factory=uuid.uuid4)


async def lock_knowledge_base(
    session: AsyncSession, tenant_id: uuid.UUID, model: str, dim: int, backend: str = "pgvector"
) -> KnowledgeBase:
    """Create or lock the tenant's knowledge-base row: writers of one tenant serialise here."""
    await session.execute(
        text(
            "INSERT INTO knowledge_bases (tenant_id, embedding_model, embedding_dim, vector_backend) "
            "VALUES (:t, :m, :d, :b) ON CONFLICT (tenant_id) DO NOTHING"
        ),
        {"t": tenant_id, "m": model, "d": dim, "b": backend},
    )
    row = (
        await session.execute(
            text(f"{_KB_SELECT} FOR UPDATE"),
            {"t": tenant_id},
        )
    ).one()
    return KnowledgeBase(*row)


async def lock_tenant_index(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Take the tenant's writer lock (same order as ingestion: knowledge base first, then terms)."""
    await session.execute(text("SELECT 1 FROM knowledge_bases WHERE tenant_id = :t FOR UPDATE"), {"t": tenant_id})


async def _bump_knowledge_base(session: AsyncSession, tenant_id: uuid.UUID, chunks: int, tokens: int) -> None:
    await session.execute(
        text(
            "UPDATE knowledge_bases SET chunk_count = chunk_count + :c, token_count = token_count + :n, "
            "version = version + 1, updated_at = now() WHERE tenant_id = :t"
        ),
        {"t": tenant_id, "c": chunks, "n": tokens},
    )


async def chunk_metadata(
    session: AsyncSession, tenant_id: uuid.UUID, document_id: uuid.UUID
) -> list[tuple[int, dict[str, Any], dict[int, float]]]:
    """Each chunk of a document as (ord, its own metadata, sparse weights): what a vector backend that
    keeps a copy of the metadata needs to rebuild its records' metadata."""
    rows = (
        await session.execute(
            text(
                "SELECT ord, metadata, sparse::text AS sparse FROM chunks "
                "WHERE tenant_id = :t AND document_id = :d ORDER BY ord"
            ),
            {"t": tenant_id, "d": document_id},
        )
    ).all()
    return [(r.ord, dict(r.metadata), parse_sparsevec(r.sparse)) for r in rows]


async def bump_knowledge_base(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """A new knowledge-base version without new chunks (a document's metadata changed), so cached answers
    are not served with stale filters."""
    await _bump_knowledge_base(session, tenant_id, 0, 0)


async def _adjust_df(session: AsyncSession, tenant_id: uuid.UUID, df: Counter[int], sign: int) -> None:
    """Add (sign=+1) or remove (sign=-1) chunks' terms from the tenant's document frequencies.

    Callers hold the tenant's knowledge-base lock, so a tenant's writers never interleave here.
    """
    if not df:
        return
    terms = sorted(df)
    params = {"t": tenant_id, "terms": terms, "dfs": [df[t] for t in terms]}
    if sign > 0:
        await session.execute(
            text(
                "INSERT INTO sparse_terms (tenant_id, term, df) "
                "SELECT :t, unnest(CAST(:terms AS int[])), unnest(CAST(:dfs AS int[])) "
                "ON CONFLICT (tenant_id, term) DO UPDATE SET df = sparse_terms.df + EXCLUDED.df"
            ),
            params,
        )
        return
    await session.execute(
        text(
            "UPDATE sparse_terms s SET df = greatest(s.df - d.n, 0) "
            "FROM unnest(CAST(:terms AS int[]), CAST(:dfs AS int[])) AS d(term, n) "
            "WHERE s.tenant_id = :t AND s.term = d.term"
        ),
        params,
    )
    await session.execute(text("DELETE FROM sparse_terms WHERE tenant_id = :t AND df = 0"), {"t": tenant_id})


async def add_chunks(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    kb: KnowledgeBase,
    chunks: Sequence[ChunkRow],
) -> None:
    if not chunks:
        return
    await session.execute(
        text(
            "INSERT INTO chunks (id, tenant_id, document_id, ord, text, title, metadata, embedding_model, "
            "embedding_dim, embedding, sparse, token_count) VALUES (:id, :t, :d, :ord, :text, :title, "
            "CAST(:metadata AS jsonb), :model, :dim, CAST(:embedding AS vector), CAST(:sparse AS sparsevec), :tokens)"
        ),
        [
            {
                "id": c.id,
                "t": tenant_id,
                "d": document_id,
                "ord": c.ord,
                "text": c.text,
                "title": c.title,
                "metadata": json.dumps(c.metadata, ensure_ascii=False, default=str),
                "model": kb.embedding_model,
                "dim": kb.embedding_dim,
                # vectors kept elsewhere (Pinecone) are not duplicated here; sparse stays for BM25 statistics
                "embedding": vector_literal(c.embedding) if kb.vector_backend == "pgvector" else None,
                "sparse": to_sparsevec(c.weights),
                "tokens": c.token_count,
            }
            for c in chunks
        ],
    )
    df: Counter[int] = Counter()
    for c in chunks:
        df.update(c.weights.keys())
    await _adjust_df(session, tenant_id, df, +1)
    await _bump_knowledge_base(session, tenant_id, len(chunks), sum(c.token_count for c in chunks))


async def remove_document_chunks(session: AsyncSession, tenant_id: uuid.UUID, document_id: uuid.UUID) -> int:
    """Delete a document's chunks and take them out of the BM25 statistics. Returns chunks removed
    (their vector-record ids are `record_ids(document_id, n)`)."""
    rows = (
        await session.execute(
            text(
                "DELETE FROM chunks WHERE tenant_id = :t AND document_id = :d "
                "RETURNING sparse::text AS sparse, token_count"
            ),
            {"t": tenant_id, "d": document_id},
        )
    ).all()
    if not rows:
        return 0
    df: Counter[int] = Counter()
    for r in rows:
        df.update(parse_sparsevec(r.sparse).keys())
    await _adjust_df(session, tenant_id, df, -1)
    await _bump_knowledge_base(session, tenant_id, -len(rows), -sum(r.token_count for r in rows))
    return len(rows)
