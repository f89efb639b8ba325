"""The chunk index in PostgreSQL: dense vectors (pgvector HNSW) and BM25 sparse vectors, per knowledge base.

Every statement runs inside a tenant session (row-level security) *and* names the tenant explicitly.
Dense search uses one partial HNSW index per embedding dimension, with pgvector 0.8's iterative scan
so a selective knowledge-base or metadata filter still yields k results. Sparse search scores exactly the
chunks that hold the query's rarest terms, found through a GIN index over their term keys (migration 0020),
or, under metadata filters, every chunk of the knowledge base.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.retrieval.bm25 import query_weights, term_keys, to_sparsevec
from ragapi.retrieval.filters import Scalar, filter_sql
from ragapi.retrieval.knowledge_bases import KnowledgeBase


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    text: str
    title: str
    metadata: dict[str, Any]
    score: float


CandidateKey = uuid.UUID | str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A match before its chunk is read: the index's key for it (the chunk id in PostgreSQL, the record
    id in an external index) and its score. Searches return candidates and only the fused top k are
    read, so a query decodes five chunks' text rather than two hundred."""

    key: CandidateKey
    score: float


def vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"


def _hit(row: Any, score: float) -> Hit:
    return Hit(
        chunk_id=uuid.UUID(bytes=row.id.bytes),  # plain UUIDs: asyncpg's subclass does not serialise
        document_id=uuid.UUID(bytes=row.document_id.bytes),
        text=row.text,
        title=row.title,
        metadata=row.metadata,
        score=score,
    )


DENSE_INDEX_LOCK = 7_270_736_901  # advisory lock key (the migrations use ...900)


async def ensure_dense_index(session: AsyncSession, dim: int) -> None:
    """Create the HNSW index for one embedding dimension (owner session; idempotent).

    Every API worker runs this at start-up: two concurrent `CREATE INDEX IF NOT EXISTS` on a fresh
    database race on the catalog (one fails with a unique violation and its worker exits), so creators
    queue on a transaction-level advisory lock and the later ones find the index."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DENSE_INDEX_LOCK})
    await session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_{int(dim)} ON chunks "
            f"USING hnsw ((embedding::vector({int(dim)})) vector_cosine_ops) WHERE embedding_dim = {int(dim)}"
        )
    )


# A hit's metadata as filters see it: its document's, its own (page, heading), and the file name.
_SELECT = (
    "SELECT c.id, c.document_id, c.text, c.title, d.metadata || c.metadata || "
    "CASE WHEN d.source IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('source', d.source) END AS metadata"
)
_HIT_DOCUMENT = "JOIN documents d ON d.id = c.document_id AND d.tenant_id = c.tenant_id"


def dense_search_settings(ef_search: int, k: int) -> dict[str, str]:
    """The transaction's settings `dense_search` needs (`Database.tenant_session(local=...)`, so they go
    with the tenant scope in one round trip)."""
    # pgvector caps ef_search at 1000; iterative scans go on for more
    return {"hnsw.ef_search": str(min(max(ef_search, k), 1000)), "hnsw.iterative_scan": "relaxed_order"}


async def dense_search(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kb: KnowledgeBase,
    query_vector: Sequence[float],
    k: int,
    filters: dict[str, Scalar | list[Scalar]],
) -> list[Candidate]:
    """In a transaction with `dense_search_settings`: without them a tenant filter can leave fewer than k."""
    dim = int(kb.embedding_dim)
    where, params = filter_sql(filters)
    distance = f"c.embedding::vector({dim}) <=> CAST(:q AS vector({dim}))"
    rows = (
        await session.execute(
            text(
                f"SELECT c.id, 1 - ({distance}) AS score FROM chunks c "
                f"WHERE c.tenant_id = :t AND c.knowledge_base_id = :kb AND c.embedding_dim = {dim} "
                f"AND c.embedding_model = :m{where} "
                f"ORDER BY {distance} LIMIT :k"
            ),
            {
                "t": tenant_id,
                "kb": kb.id,
                "m": kb.embedding_model,
                "q": vector_literal(query_vector),
                "k": k,
                **params,
            },
        )
    ).all()
    # relaxed_order may return neighbours slightly out of order
    return sorted((Candidate(r.id, float(r.score)) for r in rows), key=lambda c: c.score, reverse=True)


INDEX_SHARE = 0.25  # the term index serves a query whose candidates are at most this share of the chunks


async def sparse_search(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kb: KnowledgeBase,
    query_terms: Counter[int],
    k: int,
    filters: dict[str, Scalar | list[Scalar]],
    budget: int,
    index_share: float = INDEX_SHARE,
) -> list[Candidate]:
    """BM25 top k. With a `budget`, the chunks holding the query's rarest terms (added rarest first while
    their chunks number at most `budget`; at least the rarest) are found through the term index and scored
    exactly: the same ranking as the exact scan whenever the terms left out match no better chunk, which
    always holds when all the query's terms fit the budget. Under metadata filters the scored candidates are
    filtered, and when fewer than k pass while some terms were left out (those could fill them), the scan
    decides. Without a budget, or when the candidates are more than `index_share` of the knowledge base (a
    small one), every chunk of the knowledge base is scored (`exact_sparse_search`): a sequential read beats
    that many random ones."""
    df = await document_frequencies(session, tenant_id, kb, query_terms)
    weights = query_weights(query_terms, df, kb.chunk_count)
    if not weights:
        return []
    chosen = rarest_terms({t: df[t] for t in weights}, budget) if budget > 0 else []
    if not chosen or sum(df[t] for t in chosen) > index_share * kb.chunk_count:
        return await _scan(session, tenant_id, kb, weights, k, filters)
    params = {"kb": kb.id, "keys": term_keys(kb.id, chosen), "q": to_sparsevec(weights), "k": k, "b": budget}
    if not filters:
        statement = "SELECT id, score FROM bm25_candidates(:kb, CAST(:keys AS bigint[]), CAST(:q AS sparsevec), :k, :b)"
    else:
        # every candidate scored, then the filters on the chunk, read back under row-level security
        where, filter_params = filter_sql(filters)
        params |= {"t": tenant_id, **filter_params}
        statement = (
            "SELECT b.id, b.score FROM bm25_candidates(:kb, CAST(:keys AS bigint[]), CAST(:q AS sparsevec), :b, :b) b "
            f"JOIN chunks c ON c.id = b.id WHERE c.tenant_id = :t{where} ORDER BY b.score DESC LIMIT :k"
        )
    rows = (await session.execute(text(statement), params)).all()
    found = [Candidate(r.id, float(r.score)) for r in rows if r.score > 0]
    if filters and len(found) < k and len(chosen) < len(weights):
        return await _scan(session, tenant_id, kb, weights, k, filters)
    return found


def rarest_terms(df: dict[int, int], budget: int) -> list[int]:
    """The query's terms, rarest first, while the chunks holding them number at most `budget`; at least one."""
    chosen: list[int] = []
    total = 0
    for term in sorted(df, key=lambda t: (df[t], t)):
        if chosen and total + df[term] > budget:
            break
        chosen.append(term)
        total += df[term]
    return chosen


async def exact_sparse_search(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kb: KnowledgeBase,
    query_terms: Counter[int],
    k: int,
    filters: dict[str, Scalar | list[Scalar]],
) -> list[Candidate]:
    """BM25 top k by scoring every chunk of the knowledge base (the reference the term index is held to)."""
    df = await document_frequencies(session, tenant_id, kb, query_terms)
    weights = query_weights(query_terms, df, kb.chunk_count)
    return await _scan(session, tenant_id, kb, weights, k, filters) if weights else []


async def _scan(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kb: KnowledgeBase,
    weights: dict[int, float],
    k: int,
    filters: dict[str, Scalar | list[Scalar]],
) -> list[Candidate]:
    where, params = filter_sql(filters)
    rows = (
        await session.execute(
            text(
                "SELECT c.id, -(c.sparse <#> CAST(:q AS sparsevec)) AS score FROM chunks c "
                f"WHERE c.tenant_id = :t AND c.knowledge_base_id = :kb{where} "
                "ORDER BY c.sparse <#> CAST(:q AS sparsevec) LIMIT :k"
            ),
            {"t": tenant_id, "kb": kb.id, "q": to_sparsevec(weights), "k": k, **params},
        )
    ).all()
    return [Candidate(r.id, float(r.score)) for r in rows if r.score > 0]


async def read_hits(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ranked: Sequence[Candidate],
    filters: dict[str, Scalar | list[Scalar]],
) -> list[Hit]:
    """The chunks of candidates keyed by chunk id, in their order and with their scores. Only rows that
    are visible now come back (a document replaced or deleted since the search drops out)."""
    if not ranked:
        return []
    where, params = filter_sql(filters)
    rows = (
        await session.execute(
            text(
                f"{_SELECT} FROM chunks c {_HIT_DOCUMENT} "
                f"WHERE c.tenant_id = :t AND c.id = ANY(CAST(:ids AS uuid[])){where}"
            ),
            {"t": tenant_id, "ids": [c.key for c in ranked], **params},
        )
    ).all()
    by_id = {r.id: r for r in rows}
    return [_hit(by_id[c.key], c.score) for c in ranked if c.key in by_id]


async def sparse_query_weights(
    session: AsyncSession, tenant_id: uuid.UUID, kb: KnowledgeBase, query_terms: Counter[int]
) -> dict[int, float]:
    """BM25 query side: IDF from the knowledge base's document frequencies (always kept in PostgreSQL)."""
    df = await document_frequencies(session, tenant_id, kb, query_terms)
    return query_weights(query_terms, df, kb.chunk_count)


async def document_frequencies(
    session: AsyncSession, tenant_id: uuid.UUID, kb: KnowledgeBase, query_terms: Counter[int]
) -> dict[int, int]:
    """The knowledge base's document frequency of each query term it holds: `sparse_terms` and the changes
    not folded into it yet (`sparse_term_deltas`, a few rows; ragapi.ingestion.chunk_store)."""
    if not query_terms or not kb.chunk_count:
        return {}
    df_rows = (
        await session.execute(
            text(
                "SELECT term, sum(df)::int AS df FROM ("
                "SELECT term, df FROM sparse_terms WHERE tenant_id = :t AND knowledge_base_id = :kb "
                "AND term = ANY(CAST(:terms AS int[])) UNION ALL "
                "SELECT u.term, u.n FROM sparse_term_deltas p, unnest(p.terms, p.dfs) AS u(term, n) "
                "WHERE p.tenant_id = :t AND p.knowledge_base_id = :kb AND u.term = ANY(CAST(:terms AS int[]))"
                ") s GROUP BY term HAVING sum(df) > 0"
            ),
            {"t": tenant_id, "kb": kb.id, "terms": sorted(query_terms)},
        )
    ).all()
    return {r.term: r.df for r in df_rows}


def record_id(document_id: uuid.UUID, ord: int) -> str:
    """Vector-record id in external indexes: stable per (document, chunk), so upserts are idempotent."""
    return f"{document_id}#{ord}"


def record_ids(document_id: uuid.UUID, count: int) -> list[str]:
    return [record_id(document_id, n) for n in range(count)]


async def read_record_hits(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ranked: Sequence[Candidate],
    filters: dict[str, Scalar | list[Scalar]],
) -> list[Hit]:
    """The chunks of external-index matches (keyed by record id), in their order and with their scores.
    Only rows that exist and are visible now come back, so vectors of uncommitted or deleted versions can
    never surface."""
    if not ranked:
        return []
    keys = [str(c.key).split("#", 1) for c in ranked]
    where, params = filter_sql(filters)
    rows = (
        await session.execute(
            text(
                f"{_SELECT}, c.ord FROM chunks c {_HIT_DOCUMENT} "
                "JOIN unnest(CAST(:docs AS uuid[]), CAST(:ords AS int[])) AS k(doc, o) "
                f"ON c.document_id = k.doc AND c.ord = k.o WHERE c.tenant_id = :t{where}"
            ),
            {"t": tenant_id, "docs": [uuid.UUID(d) for d, _ in keys], "ords": [int(o) for _, o in keys], **params},
        )
    ).all()
    by_id = {record_id(uuid.UUID(bytes=r.document_id.bytes), r.ord): r for r in rows}
    return [_hit(by_id[str(c.key)], c.score) for c in ranked if str(c.key) in by_id]
