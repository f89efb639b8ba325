"""Traces as an operator sees them in Jaeger, captured with the SDK's in-memory exporter: the stage tree of
one query under its HTTP span, and an ingestion worker's span linked to the request that submitted it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragapi.answering.answer import Sources, Token
from ragapi.answering.question import Question
from ragapi.api.app import create_app
from ragapi.api.state import AppState
from ragapi.core import tracing
from ragapi.core.logs import JsonFormatter
from ragapi.core.settings import Settings
from tests.api.helpers import ingest_texts
from tests.conftest import TenantHandle


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup("ragapi-test", SimpleSpanProcessor(exporter))
    yield exporter
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.shutdown()  # later tests record nothing


@pytest.fixture(scope="module")
async def traced(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ARG001
    app = create_app(settings)  # created after tracing is on: its requests get server spans
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragapi.test") as client,
    ):
        yield client


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_query_is_one_trace_with_a_span_per_stage(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, tenant: TenantHandle
) -> None:
    await ingest_texts(traced, tenant, "Gamma irradiation sterilises dried beans.", "Beans sprout in water.")
    spans.clear()
    response = await traced.post("/v1/query", headers=tenant.headers, json={"query": "what sterilises beans?"})
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.name == "POST /v1/query" and s.kind == trace.SpanKind.SERVER)
    assert server.context is not None
    in_trace = [s for s in finished if s.context is not None and s.context.trace_id == server.context.trace_id]
    by_id = {s.context.span_id: s for s in in_trace if s.context is not None}

    def parent(span: ReadableSpan) -> str:
        return by_id[span.parent.span_id].name if span.parent and span.parent.span_id in by_id else ""

    def ancestors(span: ReadableSpan) -> list[str]:
        out = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            out.append(span.name)
        return out

    (query,) = named(in_trace, "rag.query")
    assert "POST /v1/query" in ancestors(query)
    assert query.attributes is not None and query.attributes["tenant"] == str(tenant.tenant_id)
    assert query.attributes["cache"] == "none" and query.attributes["status"] == "ok"
    for stage in ("rag.cache", "rag.retrieve", "rag.rerank", "rag.generate"):
        (span,) = named(in_trace, stage)
        assert "rag.query" in ancestors(span), stage
    for stage in ("rag.retrieve_dense", "rag.retrieve_sparse", "rag.fuse", "rag.read_chunks"):
        (span,) = named(in_trace, stage)
        assert "rag.retrieve" in ancestors(span), (stage, ancestors(span))
    (read,) = named(in_trace, "rag.read_chunks")  # only the fused top k are read, with their text
    assert read.attributes is not None and 1 <= read.attributes["hits"] <= 5
    (embed,) = named(in_trace, "rag.embed")  # once: the semantic cache's lookup, reused by retrieval
    assert "rag.cache" in ancestors(embed), ancestors(embed)
    (retrieve,) = named(in_trace, "rag.retrieve")
    assert retrieve.attributes is not None and retrieve.attributes["hits"] >= 1 and retrieve.attributes["top_k"] == 5
    (generate,) = named(in_trace, "rag.generate")
    assert generate.attributes is not None and generate.attributes["model"] == "extractive"
    (dense,) = named(in_trace, "rag.retrieve_dense")
    assert any(
        parent(s) == "rag.retrieve_dense" and s.attributes and "db.system" in str(s.attributes) for s in in_trace
    )
    assert dense.attributes is not None and dense.attributes["hits"] >= 1 and dense.attributes["backend"] == "pgvector"
    # the statements sent on the driver (authentication, admission) are spans as well, in the request's trace
    statements = [str((s.attributes or {}).get("db.statement", "")) for s in in_trace]
    assert any("FROM api_keys" in t for t in statements) and any("admit_query(" in t for t in statements)


async def test_an_ingestion_batch_links_to_the_request_that_submitted_it(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, tenant: TenantHandle
) -> None:
    spans.clear()
    accepted = await traced.post("/v1/ingest", headers=tenant.headers, json={"documents": [{"text": "Linked."}]})
    assert accepted.status_code == 202
    job = accepted.json()["job_id"]
    for _ in range(200):
        status = (await traced.get(f"/v1/ingest/jobs/{job}", headers=tenant.headers)).json()["status"]
        if status == "succeeded":
            break
        await asyncio.sleep(0.1)
    assert status == "succeeded"
    finished = spans.get_finished_spans()
    submit = next(s for s in finished if s.name == "POST /v1/ingest" and s.kind == trace.SpanKind.SERVER)
    batches = [s for s in named(finished, "ingest.batch") if s.attributes and s.attributes["job_id"] == job]
    assert batches and submit.context is not None
    assert any(
        link.context.trace_id == submit.context.trace_id and link.context.span_id == submit.context.span_id
        for batch in batches
        for link in batch.links
    )
    embed = named(finished, "ingest.embed")
    assert any(e.parent is not None and e.parent.span_id == batches[0].context.span_id for e in embed)  # type: ignore[union-attr]


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:  # noqa: ARG001
    with tracing.tracer.start_as_current_span("work") as span:
        record = logging.LogRecord("ragapi", logging.INFO, __file__, 1, "inside a span", None, None)
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    outside = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in outside


async def test_an_answer_abandoned_mid_stream_ends_its_span_without_an_error(
    traced: httpx.AsyncClient,
    spans: InMemorySpanExporter,
    tenant: TenantHandle,
    app_state: AppState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When a client goes away while its answer is suspended at a `yield`, the answer generator is closed
    later from another task (the event loop's async-generator finaliser). A span attached to the context
    across that `yield` cannot be detached there: OpenTelemetry logged an ERROR (a Sentry event per
    disconnect, seen at the end of every load test) and the span never ended."""
    await ingest_texts(traced, tenant, "The west gate closes at dusk. Visitors leave by the east gate.")
    question = Question.parse("When does the west gate close?", None, None, True, app_state.settings)
    spans.clear()
    stream = app_state.answers.pipeline.run(tenant.tenant_id, question, None, None)
    assert isinstance(await anext(stream), Sources)
    assert isinstance(await anext(stream), Token)  # suspended inside the generation stage
    with caplog.at_level(logging.ERROR):
        await asyncio.create_task(stream.aclose())  # another task, another context
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert named(list(spans.get_finished_spans()), "rag.generate")
