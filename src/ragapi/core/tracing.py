"""OpenTelemetry traces: a span per RAG stage under the HTTP request's span, exported over OTLP.

Off unless the standard variables ask for it: OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER (`otlp`, `console`); OTEL_SDK_DISABLED=true
wins. Everything else (service name, headers, protocol details, sampling) is the SDK's own OTEL_*
handling. Jaeger accepts OTLP directly (port 4318 for http/protobuf).

`stage()` is used even when tracing is off: it also feeds the stage-latency histogram, and the no-op
tracer costs next to nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from ragapi.core import request_context
from ragapi.core.metrics import STAGE_SECONDS

tracer = trace.get_tracer("ragapi")
T = TypeVar("T")
_instrumented = False


def enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter:
        return exporter != "none"
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporter() -> SpanExporter:
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def setup(service: str, processor: SpanProcessor | None = None) -> bool:
    """Install the SDK's tracer provider (once per process) and instrument Redis, httpx and Celery.
    `processor` replaces the OTLP exporter (tests: an in-memory exporter). Returns whether tracing is on."""
    global _instrumented
    if processor is None and not enabled():
        return False
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor or BatchSpanProcessor(_exporter()))
        trace.set_tracer_provider(provider)
    if not _instrumented:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()
        CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
        _instrumented = True
    return True


def active() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def instrument_engine(engine: AsyncEngine) -> None:
    """SQL statements as spans (the statement text, never its parameters). The instrumentation declares
    SQLAlchemy < 2.1 but hooks only engine events, which 2.1 keeps; tests/api/test_tracing.py checks it."""
    if active():
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False, skip_dep_check=True)


@contextmanager
def sql_span(statement: str) -> Iterator[None]:
    """A span for a statement sent on the driver, bypassing SQLAlchemy's engine events, with the
    attributes its instrumentation gives the others (the text, never the parameters)."""
    if not active():
        yield
        return
    text = " ".join(statement.split())
    attributes = {"db.system": "postgresql", "db.statement": text}
    with tracer.start_as_current_span(text.split(" ", 1)[0], kind=SpanKind.CLIENT, attributes=attributes):
        yield


@dataclass
class Stage:
    """A running stage: its span, and once it ends, how long it took (the same clock as the histogram)."""

    span: Span
    ms: float = 0.0

    def set(self, **attributes: Any) -> None:
        self.span.set_attributes(_clean(attributes))


@contextmanager
def stage(name: str, *, streaming: bool = False, **attributes: Any) -> Iterator[Stage]:
    """One RAG stage: a `rag.<name>` span, an observation of rag_stage_duration_seconds{stage} and a
    Server-Timing entry.

    `streaming`: the stage spans `yield`s of an async generator. Its span is then not made current
    here (drive the stream with `in_span`), because a generator abandoned by its consumer is closed
    from another task, where a context attached in this one cannot be detached."""
    started = time.perf_counter()
    span = tracer.start_span(f"rag.{name}", attributes=_clean(attributes))
    with _ended(span) if streaming else trace.use_span(span, end_on_exit=True):
        current = Stage(span)
        try:
            yield current
        finally:
            elapsed = time.perf_counter() - started
            current.ms = round(elapsed * 1000, 2)
            STAGE_SECONDS.labels(name).observe(elapsed)
            request_context.time_spent(name, elapsed * 1000)


def root_stage(name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Span]:
    """A span around a whole answer stream (no histogram), safe across `yield`s: drive it with `in_span`."""
    return _ended(tracer.start_span(name, attributes=_clean(attributes)))


@contextmanager
def _ended(span: Span) -> Iterator[Span]:
    try:
        yield span
    except Exception as exc:  # as use_span records it; a consumer going away is not an error
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()


async def in_span(span: Span, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """`stream`'s steps run with `span` as the current span (their own spans become its children), but
    nothing stays attached while the consumer holds an item, so closing this generator from any task
    is safe (a disconnected client's answer stream is closed by the server, not by the request's task)."""
    current = trace.set_span_in_context(span)
    try:
        while True:
            token = otel_context.attach(current)
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in attributes.items() if v is not None}


def carrier() -> dict[str, str]:
    """The current trace context as W3C `traceparent` (stored with an ingestion job)."""
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


def link_from(stored: Mapping[str, str] | None) -> list[Link]:
    """A link to the span a stored carrier came from (the API request that submitted the work)."""
    if not stored:
        return []
    context = trace.get_current_span(propagate.extract(dict(stored))).get_span_context()
    return [Link(context)] if context.is_valid else []


def consumer_span(name: str, stored: Mapping[str, str] | None, **attributes: Any) -> Any:
    return tracer.start_as_current_span(
        name, kind=SpanKind.CONSUMER, links=link_from(stored), attributes=_clean(attributes)
    )


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex for log lines, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
