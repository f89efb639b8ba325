"""Admitting a question: charge the tenant's monthly query quota and read what answering needs to know
(the knowledge bases it searches and the cache policy), in one statement, before anything runs.

`AdmissionStore` is that statement, the database function `admit_query` (migrations 0010, 0011, 0014
and 0016): it enters the tenant's scope itself (application role, `app.tenant_id`), finds the knowledge
bases the question names among those the caller may use, charges, reads the cache scope, and, given the
semantic search a cache lookup begun before admission asks for, runs it in the same round trip. A cache
hit thus costs authentication plus this one statement, an exact or a semantic one alike. A knowledge
base that is not there, or not the caller's to use, is NotFound; over quota, QuotaExceeded; both charge
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragapi.answering.cache import CacheScope, Lookup
from ragapi.answering.question import AnswerRequest
from ragapi.answering.semantic_cache import SemanticSearch
from ragapi.core.database import Database
from ragapi.core.errors import NotFound
from ragapi.ingestion.knowledge_bases import NOT_FOUND, default_ref
from ragapi.retrieval.chunks import vector_literal
from ragapi.tenants.context import TenantContext
from ragapi.tenants.quotas import Usage, current_period, over_an_empty_month, quota_refusal

# On the driver (`Database.fetch_row`): every question runs it.
_ADMIT = "SELECT * FROM admit_query($1, $2, $3, $4, $5, $6, CAST($7::text AS vector), $8, $9, $10, $11)"


@dataclass(frozen=True, slots=True)
class Admitted:
    usage: Usage
    scope: CacheScope
    nearest: list[dict[str, Any]] | None  # the semantic search's nearest entries; None: not searched


class AdmissionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def admit(
        self,
        tenant: TenantContext,
        queries: int,
        search: SemanticSearch | None,
        knowledge_bases: tuple[str, ...] | None = None,
    ) -> Admitted:
        """Charge `queries` (0 for a question whose batch was charged already) and read the scope of the
        `knowledge_bases` named (ids or names; None: the default)."""
        period, plan = current_period(), tenant.plan
        row = None
        if not over_an_empty_month(plan, queries, 0):
            searching = _search_arguments(search)
            named = list(knowledge_bases) if knowledge_bases is not None else default_refs(tenant)
            allowed = sorted(tenant.knowledge_base_ids) if tenant.knowledge_base_ids is not None else None
            row = await self.db.fetch_row(
                _ADMIT, tenant.tenant_id, period, plan.monthly_query_quota, *searching, queries, named, allowed
            )
        scope = CacheScope.parse(row["scope"]) if row is not None else None
        if scope is not None and scope.missing:  # the statement charged nothing
            raise NotFound(NOT_FOUND)
        if row is None or scope is None or row["queries"] is None:
            raise quota_refusal(plan, "query")
        usage = Usage(period, int(row["queries"]), int(row["ingest_bytes"]))
        return Admitted(usage, scope, row["nearest"])


def default_refs(tenant: TenantContext) -> list[str] | None:
    """None (the database's default: the tenant's, if it exists yet), or the one a restricted key means."""
    ref = default_ref(tenant)
    return None if ref == str(tenant.tenant_id) else [ref]


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
