"""Feedback on answers, and its export as an evaluation set.

A rating is +1 / -1 or a score in [0, 1]; both are stored as a score in [0, 1] (≥ 0.5 is positive).
Each person (user or key) has one feedback per query, which a second submission updates. The export
turns positively rated answers into BEIR-style queries and qrels (the documents of the rated chunks,
else of the chunks the answer cited), which `ragapi eval --tenant` replays against the live knowledge
base as a regression gate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from ragapi.analytics.query_log import QueryLogWriter
from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.tenants.context import TenantContext

POSITIVE = 0.5

_SOURCES = text("SELECT chunk_ids FROM query_log WHERE id = :q AND tenant_id = :t")
# xmax = 0 only on a freshly inserted row: tells a new feedback from an update.
_UPSERT = text(
    """
    INSERT INTO feedback (id, tenant_id, query_id, principal_kind, principal_id, score, comment, chunk_ids)
    VALUES (:id, :t, :q, :kind, :who, :score, :comment, CAST(:chunks AS uuid[]))
    ON CONFLICT (query_id, principal_kind, principal_id) DO UPDATE
        SET score = EXCLUDED.score, comment = EXCLUDED.comment, chunk_ids = EXCLUDED.chunk_ids, updated_at = now()
    RETURNING id, (xmax = 0) AS created
    """
)


def normalise_rating(rating: float) -> float:
    if rating == -1:
        return 0.0
    if 0.0 <= rating <= 1.0:
        return float(rating)
    raise InvalidInput("rating must be +1, -1, or a score between 0 and 1")


@dataclass(frozen=True, slots=True)
class Saved:
    feedback_id: uuid.UUID
    score: float
    created: bool


async def _query_chunks(db: Database, tenant_id: uuid.UUID, query_id: uuid.UUID) -> list[uuid.UUID] | None:
    async with db.tenant_session(tenant_id) as session:
        row = (
            await session.execute(
                text("SELECT chunk_ids FROM query_log WHERE id = :q AND tenant_id = :t"),
                {"q": query_id, "t": tenant_id},
            )
        ).first()
    return list(row[0]) if row is not None else None


async def submit(
    db: Database,
    writer: QueryLogWriter | None,
    tenant: TenantContext,
    query_id: uuid.UUID,
    rating: float,
    comment: str | None,
    chunk_ids: list[uuid.UUID] | None,
) -> Saved:
    score = normalise_rating(rating)
    sources = await _query_chunks(db, tenant.tenant_id, query_id)
    if sources is None and writer is not None:
        await writer.flush()  # the query may have been answered a moment ago and not be written yet
        sources = await _query_chunks(db, tenant.tenant_id, query_id)
    if sources is None:
        raise NotFound("no such query")
    unknown = set(chunk_ids or []) - set(sources)
    if unknown:
        raise InvalidInput("chunk_ids must be among the sources of that answer")
    params = {
        "id": uuid.uuid4(),
        "t": tenant.tenant_id,
        "q": query_id,
        "kind": tenant.principal.kind,
        "who": tenant.principal.id,
        "score": score,
        "comment": comment,
        "chunks": chunk_ids or [],
    }
    async with db.tenant_session(tenant.tenant_id) as session:
        row = (await session.execute(_UPSERT, params)).one()
    return Saved(row[0], score, bool(row[1]))


async def export(db: Database, tenant_id: uuid.UUID, kb_id: uuid.UUID | None = None) -> dict[str, list[dict[str, Any]]]:
    """BEIR-style `queries` and `qrels` from positive feedback on answers whose text was kept; with
    `kb_id`, of the questions that searched that knowledge base, rated documents of it only."""
    async with db.tenant_session(tenant_id) as session:
        rows = (
            await session.execute(
                text(
                    """
                    SELECT q.id, q.query, array_agg(DISTINCT c.document_id) AS documents
                    FROM feedback f
                    JOIN query_log q ON q.id = f.query_id
                    CROSS JOIN LATERAL unnest(
                        CASE WHEN cardinality(f.chunk_ids) > 0 THEN f.chunk_ids
                             WHEN cardinality(q.cited_chunk_ids) > 0 THEN q.cited_chunk_ids
                             ELSE q.chunk_ids END
                    ) AS rated(chunk_id)
                    JOIN chunks c ON c.id = rated.chunk_id
                    WHERE f.tenant_id = :t AND f.score >= :positive AND q.query IS NOT NULL
                      AND (CAST(:kb AS uuid) IS NULL
                           OR (:kb = ANY(q.knowledge_base_ids) AND c.knowledge_base_id = :kb))
                    GROUP BY q.id, q.query
                    ORDER BY q.id
                    """
                ),
                {"t": tenant_id, "positive": POSITIVE, "kb": kb_id},
            )
        ).all()
    queries = [{"_id": str(r.id), "text": r.query} for r in rows]
    qrels = [{"query-id": str(r.id), "corpus-id": str(d), "score": 1} for r in rows for d in r.documents]
    return {"queries": queries, "qrels": qrels}
