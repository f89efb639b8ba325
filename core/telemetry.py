"""Process-wide Prometheus metrics (exported at /metrics by the observability work)."""

from __future__ import annotations

from prometheus_client import Counter

CACHE_LOOKUPS = Counter(
    "rag_cache_lookups_total",
    "Answer-cache lookups by cache type and result",
    ["type", "result"],  # type: exact|semantic, result: hit|miss|error
)
