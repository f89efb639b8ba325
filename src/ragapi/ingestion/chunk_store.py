"""The write side of the chunk store: a document's chunks with their vectors and BM25 weights, the knowledge
base's document frequencies and its row (counts and version), all in the ingesting transaction.

Every write takes the knowledge base's row first (`lock_knowledge_base`), so its writers serialise and the
BM25 statistics cannot deadlock; every write bumps the knowledge base's version, which partitions the
answer cache, so no cached answer outlives the chunks it cites. The read side is `ragapi.retrieval.chunks`.
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

from ragapi.core.errors import NotFound
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import parse_sparsevec, term_keys, to_sparsevec
from ragapi.retrieval.chunks import vector_literal
from ragapi.retrieval.knowledge_bases import DEFAULT_NAME, KnowledgeBase, KnowledgeBaseSettings

GONE = "knowledge base not found (it was deleted)"


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
    session: AsyncSession, tenant_id: uuid.UUID, kb_id: uuid.UUID, model: str, dim: int, backend: str = "pgvector"
) -> KnowledgeBase:
    """Lock a live knowledge base: its writers serialise here. The tenant's default (id = tenant id) is
    created with `model`, `dim` and `backend` when it does not exist yet; any other must exist (NotFound)."""
    if kb_id == tenant_id:
        await knowledge_bases.insert(
            session, tenant_id, kb_id, DEFAULT_NAME, model, dim, backend, KnowledgeBaseSettings()
        )
    kb = await knowledge_bases.get(session, kb_id, lock=True)
    if kb is None or kb.status != "active":
        raise NotFound(GONE)
    return kb


async def lock_index(session: AsyncSession, kb_id: uuid.UUID) -> KnowledgeBase:
    """Take a knowledge base's writer lock (the same order as ingestion: the knowledge base, then terms)."""
    kb = await knowledge_bases.get(session, kb_id, lock=True)
    if kb is None:
        raise NotFound(GONE)
    return kb


async def _bump_knowledge_base(session: AsyncSession, kb_id: uuid.UUID, chunks: int, tokens: int) -> None:
    await session.execute(
        text(
            "UPDATE knowledge_bases SET chunk_count = chunk_count + :c, token_count = token_count + :n, "
            "version = version + 1, updated_at = now() WHERE id = :k"
        ),
        {"k": kb_id, "c": chunks, "n": tokens},
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


async def bump_knowledge_base(session: AsyncSession, kb_id: uuid.UUID) -> None:
    """A new knowledge-base version without new chunks (a document's metadata or the knowledge base's
    settings changed), so cached answers are not served with stale filters or settings."""
    await _bump_knowledge_base(session, kb_id, 0, 0)


FOLD_EVERY = 16  # pending changes of a knowledge base's document frequencies before they are folded in

# The pending changes summed by term, folded into sparse_terms (an UPDATE of the terms it has, an INSERT of
# the others: a negative change never becomes a row); returns the terms left with no chunk.
_FOLD = text(
    """
    WITH gone AS (
        DELETE FROM sparse_term_deltas WHERE knowledge_base_id = :k RETURNING terms, dfs
    ), d AS (
        SELECT u.term, sum(u.n)::int AS n FROM gone, unnest(gone.terms, gone.dfs) AS u(term, n)
        GROUP BY u.term HAVING sum(u.n) <> 0
    ), upd AS (
        UPDATE sparse_terms s SET df = greatest(s.df + d.n, 0) FROM d
        WHERE s.knowledge_base_id = :k AND s.term = d.term RETURNING s.term, s.df
    ), ins AS (
        INSERT INTO sparse_terms (tenant_id, knowledge_base_id, term, df)
        SELECT :t, :k, d.term, d.n FROM d WHERE d.n > 0 AND d.term NOT IN (SELECT term FROM upd)
    )
    SELECT coalesce(array_agg(term) FILTER (WHERE df = 0), '{}') AS zero FROM upd
    """
)


async def _adjust_df(session: AsyncSession, kb: KnowledgeBase, df: Counter[int], sign: int) -> None:
    """Add (sign=+1) or remove (sign=-1) chunks' terms from the knowledge base's document frequencies.

    The change is one row of `sparse_term_deltas`, which readers add to `sparse_terms`
    (`ragapi.retrieval.chunks.document_frequencies`); every `FOLD_EVERY` of them are folded in. Callers hold
    the knowledge base's lock, so its writers never interleave here.
    """
    if not df:
        return
    terms = sorted(df)
    pending = (
        await session.execute(
            text(
                "WITH added AS (INSERT INTO sparse_term_deltas (tenant_id, knowledge_base_id, terms, dfs) "
                "VALUES (:t, :k, CAST(:terms AS int[]), CAST(:dfs AS int[])) RETURNING 1) "
                "SELECT count(*) + 1 FROM sparse_term_deltas WHERE knowledge_base_id = :k"
            ),
            {"t": kb.tenant_id, "k": kb.id, "terms": terms, "dfs": [sign * df[t] for t in terms]},
        )
    ).scalar_one()
    if pending >= FOLD_EVERY:
        await fold_document_frequencies(session, kb)


async def fold_document_frequencies(session: AsyncSession, kb: KnowledgeBase) -> None:
    """Fold a knowledge base's pending changes into `sparse_terms` (its lock held)."""
    zero = (await session.execute(_FOLD, {"t": kb.tenant_id, "k": kb.id})).scalar_one()
    if zero:  # terms no chunk holds any more
        await session.execute(
            text("DELETE FROM sparse_terms WHERE knowledge_base_id = :k AND term = ANY(CAST(:z AS int[])) AND df = 0"),
            {"k": kb.id, "z": zero},
        )


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
            "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ord, text, title, metadata, "
            "embedding_model, embedding_dim, embedding, sparse, term_keys, token_count) "
            "VALUES (:id, :t, :kb, :d, :ord, :text, :title, CAST(:metadata AS jsonb), :model, :dim, "
            "CAST(:embedding AS vector), CAST(:sparse AS sparsevec), :keys, :tokens)"
        ),
        [
            {
                "id": c.id,
                "t": tenant_id,
                "kb": kb.id,
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
                "keys": term_keys(kb.id, sorted(c.weights)),
                "tokens": c.token_count,
            }
            for c in chunks
        ],
    )
    df: Counter[int] = Counter()
    for c in chunks:
        df.update(c.weights.keys())
    await _adjust_df(session, kb, df, +1)
    await _bump_knowledge_base(session, kb.id, len(chunks), sum(c.token_count for c in chunks))


async def remove_document_chunks(
    session: AsyncSession, tenant_id: uuid.UUID, kb: KnowledgeBase, document_id: uuid.UUID
) -> int:
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
    await _adjust_df(session, kb, df, -1)
    await _bump_knowledge_base(session, kb.id, -len(rows), -sum(r.token_count for r in rows))
    return len(rows)
