"""Admitting a question: charge the tenant's monthly query quota and read what answering needs to know
about the tenant (its knowledge base and cache policy), in one statement, before anything runs.

`AdmissionStore` is that statement, the database function `admit_query` (migrations 0010, 0011 and
0014): it enters the tenant's scope itself (application role, `app.tenant_id`), charges, reads the cache
scope, and, given the semantic search a cache lookup begun before admission asks for, runs it in the same
round trip. A cache hit thus costs authentication plus this one statement, an exact or a semantic one
alike; over quota it charges nothing and raises QuotaExceeded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ragapi.answering.cache import CacheScope, Lookup
from ragapi.answering.question import AnswerRequest
from ragapi.answering.semantic_cache import SemanticSearch
from ragapi.core.database import Database
from ragapi.retrieval.chunks import KnowledgeBase, vector_literal
from ragapi.tenants.context import TenantPlan
from ragapi.tenants.quotas import Usage, current_period, over_an_empty_month, quota_refusal

# On the driver (`Database.fetch_row`): every question runs it.
_ADMIT = "SELECT * FROM admit_query($1, $2, $3, $4, $5, $6, CAST($7::text AS vector), $8, $9)"


@dataclass(frozen=True, slots=True)
class Admitted:
    usage: Usage
    scope: CacheScope
    nearest: list[dict[str, Any]] | None  # the semantic search's nearest entries; None: not searched


class AdmissionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def admit(
        self, tenant_id: uuid.UUID, plan: TenantPlan, queries: int, search: SemanticSearch | None
    ) -> Admitted:
        """Charge `queries` (0 for a question whose batch was charged already) and read the scope."""
        period = current_period()
        row = None
        if not over_an_empty_month(plan, queries, 0):
            searching = _search_arguments(search)
            row = await self.db.fetch_row(_ADMIT, tenant_id, period, plan.monthly_query_quota, *searching, queries)
        if row is None:
            raise quota_refusal(plan, "query")
        usage = Usage(period, int(row["queries"]), int(row["ingest_bytes"]))
        return Admitted(usage, CacheScope.parse(row["scope"]), row["nearest"])


def _search_arguments(search: SemanticSearch | None) -> tuple[Any, ...]:
    """`admit_query`'s search arguments: version, partition, dimension, vector, limit (none: no search)."""
    if search is None:
        return (None, None, None, None, 0)
    return (search.kb_version, search.partition, len(search.vector), vector_literal(search.vector), search.limit)


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted question: what answering runs with."""

    request: AnswerRequest
    scope: CacheScope
    lookup: Lookup | None  # the cache lookup begun before admission, if any
    nearest: list[dict[str, Any]] | None  # what admission's semantic search found for `lookup`

    @property
    def knowledge_base(self) -> KnowledgeBase | None:
        return self.scope.kb
