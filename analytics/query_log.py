"""The query log: every answered or failed query, whichever surface asked it (REST, SSE, LangServe, CLI)
and whether the cache answered it.

The answer stream is wrapped (`logged_stream`), so no surface can forget to log. The wrapper only builds a
record when the stream ends; a background writer inserts records in batches, so logging adds no
database round trip to a request. The queue is bounded: when the database cannot keep up, records are
dropped and counted (`rag_query_log_dropped_total`) rather than growing memory without limit.
Retention: rows older than QUERY_LOG_RETENTION_DAYS are deleted hourly, except those with feedback
(they are evaluation data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator
from langchain_core.runnables.utils import AddableDict
from prometheus_client import Counter
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from analytics.models import QueryLog
from analytics.pricing import cost_usd
from core import inputs, request_context, tracing
from core.database import Database
from core.errors import RagApiError
from core.metrics import COST, QUERIES, QUERY_SECONDS, TOKENS, tenant_label
from core.settings import Settings
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PRINCIPAL_KEY = "principal"  # configurable keys the API sets next to the tenant
SURFACE_KEY = "surface"

DROPPED = Counter("rag_query_log_dropped_total", "Query-log records dropped because the write queue was full")
PURGE_EVERY_S = 3600.0
_CITED = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: uuid.UUID
    principal_kind: str
    principal_id: uuid.UUID
    surface: str


def caller_from_config(config: RunnableConfig | None) -> Caller | None:
    """Who asked, as the API put it into the config; None for callers the API did not set up."""
    configurable = (config or {}).get("configurable") or {}
    try:
        kind, ident = str(configurable[PRINCIPAL_KEY]).split(":", 1)
        return Caller(uuid.UUID(str(configurable["tenant_id"])), kind, uuid.UUID(ident), configurable[SURFACE_KEY])
    except (KeyError, ValueError):
        return None


def build_record(
    caller: Caller,
    settings: Settings,
    embedding_model: str,
    query: str,
    started: datetime,
    response: dict[str, Any],
    error: BaseException | None,
) -> dict[str, Any]:
    citations = response.get("citations") or []
    cited_numbers = {int(n) for n in _CITED.findall(response.get("answer") or "")}
    timings = response.get("timings_ms") or {}
    usage = response.get("usage") or {}
    cached = response.get("cached")
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    embedding = int(usage.get("embedding_tokens", 0))
    model = response.get("model")
    status = 500 if not isinstance(error, RagApiError) else error.status
    return {
        "id": uuid.UUID(response["query_id"]) if response.get("query_id") else uuid.uuid4(),
        "tenant_id": caller.tenant_id,
        "principal_kind": caller.principal_kind,
        "principal_id": caller.principal_id,
        "surface": caller.surface,
        "request_id": request_context.current_request_id() or None,
        "created_at": started,
        "status": "ok" if error is None else "error",
        "error_status": None if error is None else status,
        "cache": cached if cached in ("exact", "semantic") else "none",
        "query": inputs.strip_text(query)[0] if settings.query_log_store_text else None,
        "embed_ms": timings.get("embed"),
        "retrieve_ms": timings.get("retrieve"),
        "rerank_ms": timings.get("rerank"),
        "generate_ms": timings.get("generate"),
        "total_ms": timings.get("total"),
        "sources": len(citations),
        "top_score": max((c["score"] for c in citations), default=None),
        "chunk_ids": [uuid.UUID(c["chunk_id"]) for c in citations],
        "cited_chunk_ids": [uuid.UUID(c["chunk_id"]) for c in citations if c["n"] in cited_numbers],
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "embedding_tokens": embedding,
        "tokens_estimated": bool(usage.get("estimated", False)),
        "cost_usd": cost_usd(settings.model_prices, model, prompt, completion, embedding_model, embedding),
    }


class QueryLogWriter:
    def __init__(self, db: Database, settings: Settings, interval_s: float = 0.5, batch_size: int = 500) -> None:
        self.db = db
        self.settings = settings
        self.interval_s = interval_s
        self.batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0

    def submit(self, record: dict[str, Any]) -> None:
        if len(self._buffer) >= self.settings.query_log_queue_max:
            DROPPED.inc()
            return
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything submitted so far (also used before reading the log back, e.g. feedback)."""
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
                try:
                    await self._insert(batch)
                except Exception as exc:
                    if _refused(exc):
                        # One record the database refuses fails the whole statement, and a batch mixes
                        # tenants: write it one record at a time, so that only the refused ones are lost.
                        await self._insert_each(batch)
                    else:  # the database is unreachable: drop the batch, count it, go on
                        DROPPED.inc(len(batch))
                        log.warning("writing %d query-log records failed", len(batch), exc_info=True)

    async def _insert(self, records: list[dict[str, Any]]) -> None:
        async with self.db.admin_session() as session:
            await session.execute(text("SET LOCAL synchronous_commit = off"))  # analytics, not records
            await session.execute(insert(QueryLog), records)

    async def _insert_each(self, batch: list[dict[str, Any]]) -> None:
        for n, record in enumerate(batch):
            try:
                await self._insert([record])
            except Exception as exc:
                if not _refused(exc):
                    DROPPED.inc(len(batch) - n)
                    log.warning("writing %d query-log records failed", len(batch) - n, exc_info=True)
                    return
                DROPPED.inc()
                log.warning(
                    "a query-log record was refused: %s", exc.__class__.__name__, extra={"id": str(record["id"])}
                )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            await self.flush()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY_S
                try:
                    await purge(self.db, self.settings.query_log_retention_days)
                except Exception:
                    log.warning("query-log retention purge failed", exc_info=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="query-log-writer")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()


def _refused(exc: Exception) -> bool:
    """The database answered and refused the statement (a value it cannot store, a duplicate id), as
    opposed to not answering at all."""
    return isinstance(exc, DBAPIError) and not exc.connection_invalidated


async def purge(db: Database, retention_days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    async with db.admin_session() as session:
        result = await session.execute(
            text(
                "DELETE FROM query_log q WHERE q.created_at < :cutoff "
                "AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id)"
            ),
            {"cutoff": cutoff},
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def observe(record: dict[str, Any], seconds: float) -> None:
    """Per-query metrics from the finished record (tenant label bounded by METRICS_TENANT_LABELS)."""
    tenant = tenant_label(record["tenant_id"])
    QUERIES.labels(tenant, record["cache"], record["status"]).inc()
    QUERY_SECONDS.labels(tenant).observe(seconds)
    for kind in ("prompt", "completion", "embedding"):  # zeros too: a tenant's series exist from its first query
        TOKENS.labels(tenant, kind).inc(record[f"{kind}_tokens"])
    COST.labels(tenant).inc(record["cost_usd"])


AnswerStream = Callable[[Any, RunnableConfig], AsyncIterator[AddableDict]]  # one input's answer, in chunks


def logged_stream(
    inner: Callable[[Any, RunnableConfig], AsyncIterator[Any]],
    writer: Callable[[], QueryLogWriter | None],
    embedding_model: Callable[[], str],
    settings: Callable[[], Settings],
) -> AnswerStream:
    """The answer stream `inner` for one input, inside the query's root span, measured and logged once
    when its stream ends (or fails). A plain stream function: REST and SSE call it directly, since a
    runnable layer costs every call its config and callback set-up and a shielded task at its end, and
    every chunk a task of its own (a cache hit's chain was 7 of its 13 turns of the event loop, each a
    wait behind other requests' work under load)."""

    async def answer(data: Any, config: RunnableConfig) -> AsyncIterator[AddableDict]:
        caller = caller_from_config(config)
        if caller is None:
            async for chunk in inner(data, config):
                yield chunk
            return
        started, clock = datetime.now(UTC), time.perf_counter()
        merged = AddableDict()
        error: BaseException | None = None
        attributes = {"tenant": str(caller.tenant_id), "surface": caller.surface}
        with tracing.root_stage("rag.query", attributes) as span:
            try:
                async for chunk in tracing.in_span(span, inner(data, config)):
                    merged = merged + chunk
                    yield chunk
            except BaseException as exc:
                error = exc
                raise
            finally:
                if not isinstance(error, asyncio.CancelledError | GeneratorExit):
                    query = str((data.get("query") if isinstance(data, dict) else getattr(data, "query", "")) or "")
                    record = build_record(caller, settings(), embedding_model(), query, started, merged, error)
                    observe(record, time.perf_counter() - clock)
                    span.set_attributes(
                        {
                            "cache": record["cache"],
                            "status": record["status"],
                            "sources": record["sources"],
                            "prompt_tokens": record["prompt_tokens"],
                            "completion_tokens": record["completion_tokens"],
                            "cost_usd": record["cost_usd"],
                        }
                    )
                    sink = writer()
                    if sink is not None:
                        sink.submit(record)

    return answer


def as_runnable(answer: AnswerStream) -> Runnable[Any, Any]:
    """The logged stream as the one `rag` runnable, for LangServe and the CLI: a tracer (LangSmith,
    stream_events) sees each query as that run."""

    async def answers(inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[AddableDict]:
        async for data in inputs:
            async for chunk in answer(data, config):
                yield chunk

    # RunnableGenerator passes `config` to functions that accept it; its type hints do not say so
    return RunnableGenerator(answers, name="rag")  # type: ignore[arg-type]
