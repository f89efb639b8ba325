"""What answering records of each question and search, whichever surface asked it: a query-log row (written
in batches by `ragapi.analytics.query_log.QueryLogWriter`) and the per-query metrics."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ragapi.analytics.pricing import cost_usd
from ragapi.answering.answer import Answer, Citation, Searched, Usage
from ragapi.answering.question import AnswerRequest
from ragapi.core import request_context
from ragapi.core.errors import RagApiError
from ragapi.core.metrics import COST, QUERIES, QUERY_SECONDS, TOKENS, tenant_label
from ragapi.core.settings import Settings

_CITED = re.compile(r"\[(\d{1,3})\]")


def query_record(
    request: AnswerRequest,
    knowledge_bases: Sequence[uuid.UUID],
    settings: Settings,
    embedding_model: str,
    started: datetime,
    answer: Answer | None,
    error: BaseException | None,
) -> dict[str, Any]:
    """The query-log row of one question: its answer, or the error it ended with (and what condensing it
    cost, if a chat model did: in the answer's usage already, else counted here)."""
    cited = {int(n) for n in _CITED.findall(answer.answer)} if answer is not None else set()
    spent = request.condensing
    usage = answer.usage if answer is not None else None
    if answer is None and spent is not None:
        usage = Usage(
            prompt_tokens=spent.prompt_tokens, completion_tokens=spent.completion_tokens, estimated=spent.estimated
        )
    return _record(
        request,
        knowledge_bases,
        settings,
        embedding_model,
        started,
        error,
        query_id=answer.query_id if answer is not None else uuid.uuid4(),
        citations=answer.citations if answer is not None else [],
        cited=cited,
        timings=answer.timings_ms if answer is not None else {},
        usage=usage,
        model=answer.model if answer is not None else None,
        cache=answer.cached if answer is not None and answer.cached else "none",
    )


def search_record(
    request: AnswerRequest,
    knowledge_bases: Sequence[uuid.UUID],
    settings: Settings,
    embedding_model: str,
    started: datetime,
    found: Searched | None,
    error: BaseException | None,
) -> dict[str, Any]:
    """The query-log row of a search (`POST /v1/search`, MCP's `search`): its passages as an answer's
    sources, none of them cited (there is no answer), no model, the tokens of embedding the query."""
    return _record(
        request,
        knowledge_bases,
        settings,
        embedding_model,
        started,
        error,
        query_id=found.query_id if found is not None else uuid.uuid4(),
        citations=found.passages if found is not None else [],
        cited=set(),
        timings=found.timings_ms if found is not None else {},
        usage=found.usage if found is not None else None,
        model=None,
        cache="none",
    )


def _record(
    request: AnswerRequest,
    knowledge_bases: Sequence[uuid.UUID],
    settings: Settings,
    embedding_model: str,
    started: datetime,
    error: BaseException | None,
    *,
    query_id: uuid.UUID,
    citations: Sequence[Citation],
    cited: set[int],
    timings: dict[str, float],
    usage: Usage | None,
    model: str | None,
    cache: str,
) -> dict[str, Any]:
    principal = request.tenant.principal
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    embedding = usage.embedding_tokens if usage else 0
    prices, spent = settings.model_prices, request.condensing
    # the tokens condensing cost priced as its model's, the rest as the answer's
    condensed = (spent.prompt_tokens, spent.completion_tokens) if spent is not None else (0, 0)
    cost = cost_usd(prices, model, prompt - condensed[0], completion - condensed[1], embedding_model, embedding)
    if spent is not None:
        cost += cost_usd(prices, spent.model, *condensed, embedding_model, 0)
    return {
        "id": query_id,
        "tenant_id": request.tenant.tenant_id,
        "knowledge_base_ids": list(knowledge_bases),
        "principal_kind": principal.kind,
        "principal_id": principal.id,
        "surface": request.surface.value,
        "request_id": request_context.current_request_id() or None,
        "created_at": started,
        "status": "ok" if error is None else "error",
        "error_status": None if error is None else (error.status if isinstance(error, RagApiError) else 500),
        "cache": cache,
        "query": request.question.text if settings.query_log_store_text else None,
        "embed_ms": timings.get("embed"),
        "retrieve_ms": timings.get("retrieve"),
        "rerank_ms": timings.get("rerank"),
        "generate_ms": timings.get("generate"),
        "total_ms": timings.get("total"),
        "sources": len(citations),
        "top_score": max((c.score for c in citations), default=None),
        "chunk_ids": [c.chunk_id for c in citations],
        "cited_chunk_ids": [c.chunk_id for c in citations if c.n in cited],
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "embedding_tokens": embedding,
        "tokens_estimated": bool(usage.estimated) if usage else False,
        "cost_usd": round(cost, 10),
    }


def observe(record: dict[str, Any], seconds: float) -> None:
    """Per-query metrics from the finished record (tenant label bounded by METRICS_TENANT_LABELS)."""
    tenant = tenant_label(record["tenant_id"])
    QUERIES.labels(tenant, record["cache"], record["status"]).inc()
    QUERY_SECONDS.labels(tenant).observe(seconds)
    for kind in ("prompt", "completion", "embedding"):  # zeros too: a tenant's series exist from its first query
        TOKENS.labels(tenant, kind).inc(record[f"{kind}_tokens"])
    COST.labels(tenant).inc(record["cost_usd"])
