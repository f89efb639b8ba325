"""Process-wide Prometheus metrics (exported at /metrics by the observability work)."""

from __future__ import annotations

from prometheus_client import Counter

CACHE_LOOKUPS = Counter(
    "rag_cache_lookups_total",
    "Answer-cache lookups by cache type and result",
    ["type", "result"],  # type: exact|semantic, result: hit|miss|error
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
