"""Admitting a query, for every surface that runs the answer chain (REST, SSE, LangServe): charge the
tenant's query quota and read what the answer cache needs in one statement (a database function that
enters the tenant's scope), then hand the chain its configuration. A cache hit thus costs
authentication plus this one round trip.
"""

from __future__ import annotations

from typing import Any, Literal

from analytics.query_log import PRINCIPAL_KEY, SURFACE_KEY
from api.state import AppState
from chains.cached_rag import CACHE_SCOPE_KEY, parse_cache_scope
from chains.rag import TENANT_KEY
from core import request_context
from tenants import quotas
from tenants.context import TenantContext


async def admit_query(
    state: AppState, tenant: TenantContext, surface: Literal["rest", "sse", "langserve"]
) -> dict[str, Any]:
    """The `configurable` entries for the chain; raises QuotaExceeded (and charges nothing) over quota."""
    with request_context.timed("admission"):
        _, cache_scope = await quotas.charge_query(state.db, tenant.tenant_id, tenant.plan)
    return {
        TENANT_KEY: str(tenant.tenant_id),
        PRINCIPAL_KEY: f"{tenant.principal.kind}:{tenant.principal.id}",
        SURFACE_KEY: surface,
        CACHE_SCOPE_KEY: parse_cache_scope(cache_scope) if state.settings.cache_enabled else None,
    }
