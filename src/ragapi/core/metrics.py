"""Process-wide Prometheus metrics and the /metrics exposition.

Names follow Prometheus conventions (`_total` counters, `_seconds` histograms). Every label has a
bounded set of values: stages, cache types, outcomes and providers are fixed lists, and tenants get a
label of their own only for the first METRICS_TENANT_LABELS tenants a process sees (the rest share
`other`; 0 puts every tenant under `all`). Counters with fixed labels start at zero, so dashboards show
0 rather than "no data" before the first error.

With several processes (uvicorn `--workers`, Celery prefork) set PROMETHEUS_MULTIPROC_DIR to an empty
directory shared by them: prometheus_client then keeps values in files there and `/metrics` adds them up.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGES = ("cache", "embed", "retrieve", "retrieve_dense", "retrieve_sparse", "fuse", "rerank", "generate")
PROVIDERS = ("openai", "cohere", "pinecone", "embeddings")

CACHE_LOOKUPS = Counter(
    "rag_cache_lookups_total",
    "Answer-cache lookups by cache type and result",
    ["type", "result"],  # type: exact|semantic, result: hit|miss
)
CACHE_BACKEND_ERRORS = Counter(
    "rag_cache_backend_errors_total",
    "Redis failures or timeouts of the exact cache (the lookup counts as a miss)",
    ["operation"],  # get|set
)
RATE_LIMIT_REJECTIONS = Counter(
    "rag_rate_limit_rejections_total",
    "Requests refused with 429, by the limit that refused them",
    ["limit"],  # tenant|principal|ip|login|quota_queries|quota_ingest
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "rag_rate_limit_backend_errors_total",
    "Redis failures or timeouts that switched rate limiting to in-process limits for a cool-down",
)
HTTP_IN_FLIGHT = Gauge(
    "rag_http_requests_in_flight", "HTTP requests being served, SSE streams included", multiprocess_mode="livesum"
)
QUERY_EMBEDDING_INLINE_TOKENS = Gauge(
    "rag_query_embedding_inline_tokens",
    "Longest query (word pieces) a process embeds on its event loop: QUERY_EMBEDDING_INLINE_MS as timed there",
    multiprocess_mode="liveall",
)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route template, method and status class", ["handler", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration (SSE: the whole stream) by route template and method",
    ["handler", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUEST_BYTES = Summary("http_request_size_bytes", "HTTP request body size (Content-Length)", ["handler"])
HTTP_RESPONSE_BYTES = Summary("http_response_size_bytes", "HTTP response body size as sent", ["handler"])
STAGE_SECONDS = Histogram(
    "rag_stage_duration_seconds", "Time spent in one stage of answering a query", ["stage"], buckets=LATENCY_BUCKETS
)
TIME_TO_FIRST_TOKEN = Histogram(
    "rag_time_to_first_token_seconds",
    "From the start of a query to the first piece of its answer (cache hits included)",
    ["cache"],  # none|exact|semantic
    buckets=LATENCY_BUCKETS,
)
QUERIES = Counter("rag_queries_total", "Answered queries", ["tenant", "cache", "outcome"])  # outcome: ok|error
QUERY_SECONDS = Histogram(
    "rag_query_duration_seconds", "Whole answer, from start to the last piece", ["tenant"], buckets=LATENCY_BUCKETS
)
TOKENS = Counter(
    "rag_tokens_total", "Tokens spent answering queries", ["tenant", "kind"]
)  # prompt|completion|embedding
COST = Counter("rag_cost_usd_total", "Estimated provider cost of answering queries (MODEL_PRICES)", ["tenant"])
PROVIDER_ERRORS = Counter(
    "rag_provider_errors_total", "Failed calls to a model or vector provider", ["provider"]
)  # openai|cohere|pinecone|embeddings
CONDENSE_FALLBACKS = Counter(
    "rag_condense_fallbacks_total",
    "Follow-up questions the chat model did not make standalone, left to the offline rewrite, by reason",
    ["reason"],  # error|timeout|empty|truncated|too_long
)
CONDENSE_FALLBACK_REASONS = ("error", "timeout", "empty", "truncated", "too_long")
INGEST_JOBS = Counter(
    "rag_ingest_jobs_total", "Ingestion jobs that ended, by outcome", ["outcome"]
)  # succeeded|partially_failed|failed|cancelled
INGEST_JOB_SECONDS = Histogram(
    "rag_ingest_job_duration_seconds",
    "From submission to the end of an ingestion job",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
INGEST_DOCUMENTS = Counter(
    "rag_ingest_documents_total", "Files a worker finished, by outcome", ["outcome"]
)  # indexed|failed|retried
INGEST_BATCH_SECONDS = Histogram(
    "rag_ingest_batch_duration_seconds",
    "Loading, parsing, embedding and writing one claimed batch of files (up to INGEST_TASK_FILES)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
INGEST_CHUNKS = Counter("rag_ingest_chunks_total", "Chunks written by ingestion")
INGEST_REMOVED_CHARACTERS = Counter(
    "rag_ingest_removed_characters_total",
    "NUL characters and lone UTF-16 surrogates removed from the text extracted from finished files",
)
INGEST_RECLAIMED = Counter(
    "rag_ingest_reclaimed_files_total", "Files whose lease ran out, returned to the queue and dispatched again"
)
DEPENDENCY_UP = Gauge(
    "rag_dependency_up",
    "1 when a dependency passed its last readiness check (/readyz), 0 when it failed",
    ["dependency"],  # database|migrations|model|redis|broker
    multiprocess_mode="liveall",
)
INGEST_QUEUE = Gauge(
    "rag_ingest_queue_files",
    "Files of unfinished jobs, by state (measured every METRICS_QUEUE_POLL_S)",
    ["state"],  # queued|running
    multiprocess_mode="max",
)
INGEST_OLDEST = Gauge(
    "rag_ingest_oldest_queued_seconds",
    "Age of the oldest file waiting for a worker (0 when none waits)",
    multiprocess_mode="max",
)


def _start_at_zero() -> None:
    for cache_type in ("exact", "semantic"):
        for result in ("hit", "miss"):
            CACHE_LOOKUPS.labels(cache_type, result)
    for operation in ("get", "set"):
        CACHE_BACKEND_ERRORS.labels(operation)
    for limit in ("tenant", "principal", "ip", "login", "quota_queries", "quota_ingest"):
        RATE_LIMIT_REJECTIONS.labels(limit)
    for provider in PROVIDERS:
        PROVIDER_ERRORS.labels(provider)
    for reason in CONDENSE_FALLBACK_REASONS:
        CONDENSE_FALLBACKS.labels(reason)
    for outcome in ("succeeded", "partially_failed", "failed", "cancelled"):
        INGEST_JOBS.labels(outcome)
    for outcome in ("indexed", "failed", "retried"):
        INGEST_DOCUMENTS.labels(outcome)
    for state in ("queued", "running"):
        INGEST_QUEUE.labels(state)


_start_at_zero()


class TenantLabels:
    """The label a tenant's series carry: its id for the first `limit` tenants seen, then `other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, tenant_id: object) -> str:
        if self.limit == 0:
            return "all"
        tenant = str(tenant_id)
        if tenant in self._known:
            return tenant
        with self._lock:
            if len(self._known) < self.limit:
                self._known.add(tenant)
                return tenant
        return "other"


_tenant_labels = TenantLabels(20)


def configure_tenant_labels(limit: int) -> None:
    global _tenant_labels
    if limit != _tenant_labels.limit:
        _tenant_labels = TenantLabels(limit)


def tenant_label(tenant_id: object) -> str:
    return _tenant_labels(tenant_id)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def serve_metrics(port: int) -> None:
    """/metrics on its own port, in a thread (Celery workers, which serve no HTTP otherwise)."""
    start_http_server(port, registry=_registry())


def exposition() -> tuple[bytes, str]:
    """The text format of every metric of this process, or of all processes sharing the multiprocess dir."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST
