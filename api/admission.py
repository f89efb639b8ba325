"""Admitting a query, for every surface that runs the answer chain (REST, SSE, LangServe): charge the
tenant's query quota and read what the answer cache needs in one statement (a database function that
enters the tenant's scope), then hand the chain its configuration.

With the request's input (REST and SSE) the cache's lookup starts before it: the exact entry, and without
one the question's embedding, so that the same statement also runs the semantic search. A cache hit thus
costs authentication plus this one round trip, an exact or a semantic one alike.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from analytics.query_log import PRINCIPAL_KEY, SURFACE_KEY
from api.state import AppState
from chains.cached_rag import CACHE_LOOKUP_KEY, CACHE_SCOPE_KEY, parse_cache_scope
from chains.rag import TENANT_KEY
from core import request_context
from tenants import quotas
from tenants.context import TenantContext


async def admit_query(
    state: AppState,
    tenant: TenantContext,
    surface: Literal["rest", "sse", "langserve"],
    payload: Any = None,
    queries: int = 1,
) -> dict[str, Any]:
    """The `configurable` entries for the chain, charging `queries` (a LangServe batch: one per input);
    raises QuotaExceeded (and charges nothing) over quota, and InvalidInput (charging nothing either) for
    input the chain would refuse."""
    prefetched = await state.cached.prefetch(tenant.tenant_id, payload) if payload is not None else None
    with request_context.timed("admission"):
        search = prefetched.search() if prefetched is not None else None
        admitted = await quotas.charge_query(state.db, tenant.tenant_id, tenant.plan, search, queries)
    if prefetched is not None and admitted.nearest is not None:
        prefetched = replace(prefetched, nearest=admitted.nearest)
    return {
        TENANT_KEY: str(tenant.tenant_id),
        PRINCIPAL_KEY: f"{tenant.principal.kind}:{tenant.principal.id}",
        SURFACE_KEY: surface,
        CACHE_SCOPE_KEY: parse_cache_scope(admitted.cache_scope) if state.settings.cache_enabled else None,
        CACHE_LOOKUP_KEY: prefetched,
    }
