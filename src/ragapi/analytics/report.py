"""Usage analytics over the query log, feedback and documents, computed in PostgreSQL.

Percentiles are `percentile_cont` (linear interpolation, as numpy's default); stages a query did not
run (a cache hit retrieves nothing) are left out of that stage's percentiles. A tenant's numbers are
read in its own RLS-scoped session; a superadmin may read one tenant or all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput

STAGES = ("embed", "retrieve", "rerank", "generate", "total")
MAX_BUCKETS = 2000
LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    interval: Literal["hour", "day"]
    tenant_id: uuid.UUID | None  # None: every tenant (superadmins only)
    group_by: Literal["key", "user", "knowledge_base"] | None = None
    knowledge_base_id: uuid.UUID | None = None  # only the questions that searched it, its documents

    def check(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInput("start and end need a timezone, e.g. 2026-11-01T00:00:00Z")
        if self.end <= self.start:
            raise InvalidInput("end must be after start")
        step = 3600 if self.interval == "hour" else 86400
        if (self.end - self.start).total_seconds() / step > MAX_BUCKETS:
            raise InvalidInput(f"at most {MAX_BUCKETS} {self.interval}s per request: narrow the range")


def _where(window: Window, alias: str = "q", column: str = "created_at") -> str:
    tenant = f" AND {alias}.tenant_id = :tenant" if window.tenant_id is not None else ""
    kb = ""
    if window.knowledge_base_id is not None:
        kb = {
            "q": " AND :kb = ANY(q.knowledge_base_ids)",
            "d": " AND d.knowledge_base_id = :kb",
            "f": (
                " AND EXISTS (SELECT 1 FROM query_log fq WHERE fq.id = f.query_id AND :kb = ANY(fq.knowledge_base_ids))"
            ),
        }[alias]
    return f"{alias}.{column} >= :start AND {alias}.{column} < :end{tenant}{kb}"


def _percentiles(stage: str) -> str:
    return f"percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY q.{stage}_ms) AS {stage}"


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[Any]:
    return list((await session.execute(text(sql), params)).all())


def _latency(row: Any) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for stage in STAGES:
        values = getattr(row, stage)
        out[stage] = dict(zip(("p50", "p95", "p99"), values or [None, None, None], strict=True))
    return out


async def report(db: Database, window: Window, low_score: float) -> dict[str, Any]:
    window.check()
    params: dict[str, Any] = {
        "start": window.start,
        "end": window.end,
        "tenant": window.tenant_id,
        "kb": window.knowledge_base_id,
    }
    scope = db.tenant_session(window.tenant_id) if window.tenant_id is not None else db.admin_session()
    where = _where(window)
    async with scope as session:
        totals = (
            await _rows(
                session,
                f"""
                SELECT count(*) AS queries,
                       count(*) FILTER (WHERE status = 'error') AS errors,
                       count(*) FILTER (WHERE cache = 'exact') AS exact_hits,
                       count(*) FILTER (WHERE cache = 'semantic') AS semantic_hits,
                       coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
                       coalesce(sum(completion_tokens), 0) AS completion_tokens,
                       coalesce(sum(embedding_tokens), 0) AS embedding_tokens,
                       coalesce(sum(cost_usd), 0) AS cost_usd,
                       {", ".join(_percentiles(s) for s in STAGES)}
                FROM query_log q WHERE {where}
                """,
                params,
            )
        )[0]
        buckets = await _rows(
            session,
            f"""
            SELECT date_trunc('{window.interval}', q.created_at, 'UTC') AS bucket, count(*) AS queries,
                   count(*) FILTER (WHERE status = 'error') AS errors,
                   count(*) FILTER (WHERE cache <> 'none') AS cache_hits,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY q.total_ms) AS p95_ms,
                   coalesce(sum(cost_usd), 0) AS cost_usd
            FROM query_log q WHERE {where} GROUP BY 1 ORDER BY 1
            """,
            params,
        )
        feedback = (
            await _rows(
                session,
                f"""
                SELECT count(*) AS total, count(*) FILTER (WHERE f.score >= 0.5) AS positive
                FROM feedback f WHERE {_where(window, "f")}
                """,
                params,
            )
        )[0]
        top = await _rows(
            session,
            f"""
            SELECT lower(btrim(q.query)) AS query, count(*) AS count FROM query_log q
            WHERE {where} AND q.query IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {LIST_LIMIT}
            """,
            params,
        )
        poor = await _rows(
            session,
            f"""
            SELECT q.id, q.query, q.created_at, q.sources, q.top_score,
                   EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id AND f.score < 0.5) AS disliked
            FROM query_log q
            WHERE {where} AND q.status = 'ok' AND (
                q.sources = 0 OR q.top_score < :low
                OR EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id AND f.score < 0.5))
            ORDER BY q.created_at DESC LIMIT {LIST_LIMIT}
            """,
            {**params, "low": low_score},
        )
        ingest = (
            await _rows(
                session,
                f"""
                SELECT count(*) AS documents, coalesce(sum(d.size_bytes), 0) AS bytes,
                       coalesce(sum(d.chunk_count), 0) AS chunks
                FROM documents d WHERE {_where(window, "d")}
                """,
                params,
            )
        )[0]
        groups: list[Any] = []
        if window.group_by == "knowledge_base":  # a question that searched several counts for each
            groups = await _rows(
                session,
                f"""
                SELECT g.id, count(*) AS queries,
                       count(*) FILTER (WHERE status = 'error') AS errors,
                       coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens,
                       coalesce(sum(cost_usd), 0) AS cost_usd
                FROM query_log q CROSS JOIN LATERAL unnest(q.knowledge_base_ids) AS g(id) WHERE {where}
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1000
                """,
                params,
            )
        elif window.group_by is not None:
            groups = await _rows(
                session,
                f"""
                SELECT q.principal_id AS id, count(*) AS queries,
                       count(*) FILTER (WHERE status = 'error') AS errors,
                       coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens,
                       coalesce(sum(cost_usd), 0) AS cost_usd
                FROM query_log q WHERE {where} AND q.principal_kind = :kind
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1000
                """,
                {**params, "kind": window.group_by},
            )
    queries = int(totals.queries)
    hits = int(totals.exact_hits) + int(totals.semantic_hits)
    return {
        "start": window.start,
        "end": window.end,
        "interval": window.interval,
        "tenant_id": window.tenant_id,
        "queries": queries,
        "errors": int(totals.errors),
        "error_rate": (int(totals.errors) / queries) if queries else 0.0,
        "cache": {
            "exact_hits": int(totals.exact_hits),
            "semantic_hits": int(totals.semantic_hits),
            "hit_rate": hits / queries if queries else 0.0,
        },
        "latency_ms": _latency(totals),
        "tokens": {
            "prompt": int(totals.prompt_tokens),
            "completion": int(totals.completion_tokens),
            "embedding": int(totals.embedding_tokens),
        },
        "cost_usd": float(totals.cost_usd),
        "feedback": {
            "total": int(feedback.total),
            "positive": int(feedback.positive),
            "negative": int(feedback.total) - int(feedback.positive),
            "positive_ratio": int(feedback.positive) / int(feedback.total) if feedback.total else None,
        },
        "series": [
            {
                "bucket": b.bucket,
                "queries": int(b.queries),
                "errors": int(b.errors),
                "cache_hits": int(b.cache_hits),
                "p95_ms": b.p95_ms,
                "cost_usd": float(b.cost_usd),
            }
            for b in buckets
        ],
        "top_queries": [{"query": t.query, "count": int(t.count)} for t in top],
        "poorly_answered": [
            {
                "query_id": p.id,
                "query": p.query,
                "created_at": p.created_at,
                "sources": p.sources,
                "top_score": p.top_score,
                "negative_feedback": p.disliked,
            }
            for p in poor
        ],
        "ingest": {"documents": int(ingest.documents), "bytes": int(ingest.bytes), "chunks": int(ingest.chunks)},
        "groups": [
            {
                "kind": window.group_by,
                "id": g.id,
                "queries": int(g.queries),
                "errors": int(g.errors),
                "tokens": int(g.tokens),
                "cost_usd": float(g.cost_usd),
            }
            for g in groups
        ],
    }
