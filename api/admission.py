"""Admitting a query, for every surface that runs the answer chain (REST, SSE, LangServe): charge the
tenant's query quota and read what the answer cache needs in one statement (a database function that
enters the tenant's scope), then hand the chain its configuration. A cache hit thus costs
authentication plus this one round trip.

Where the surface knows the question (REST and SSE), its embedding starts before the transaction, on
the embedding thread, so the two overlap: a semantic lookup or a retrieval then finds it made. An exact
hit does not need it (it costs ~2 ms of CPU off the event loop); a query refused here cancels it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from analytics.query_log import PRINCIPAL_KEY, SURFACE_KEY
from api.state import AppState
from chains.cached_rag import CACHE_SCOPE_KEY, parse_cache_scope
from chains.rag import EMBEDDING_STARTED_KEY, TENANT_KEY
from chains.retriever import embed_query
from tenants import quotas
from tenants.context import TenantContext


async def admit_query(
    state: AppState, tenant: TenantContext, surface: Literal["rest", "sse", "langserve"], query: str | None = None
) -> dict[str, Any]:
    """The `configurable` entries for the chain; raises QuotaExceeded (and charges nothing) over quota."""
    embedding = asyncio.ensure_future(embed_query(state.embeddings, query)) if query and query.strip() else None
    if embedding is not None:
        embedding.add_done_callback(_retrieved)
    try:
        _, cache_scope = await quotas.charge_query(state.db, tenant.tenant_id, tenant.plan)
    except BaseException:
        if embedding is not None:
            embedding.cancel()
        raise
    return {
        TENANT_KEY: str(tenant.tenant_id),
        PRINCIPAL_KEY: f"{tenant.principal.kind}:{tenant.principal.id}",
        SURFACE_KEY: surface,
        CACHE_SCOPE_KEY: parse_cache_scope(cache_scope) if state.settings.cache_enabled else None,
        EMBEDDING_STARTED_KEY: embedding,
    }


def _retrieved(task: asyncio.Future[Any]) -> None:
    # an exact hit never awaits the embedding: its failure is not worth a "never retrieved" log line
    if not task.cancelled():
        task.exception()
