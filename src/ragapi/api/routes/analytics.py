"""GET /v1/analytics: a tenant admin sees its tenant; a superadmin any tenant (`tenant_id`) or all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ragapi.analytics.report import Window, report
from ragapi.api.dependencies import authorize, limit_principal, principal_for_request
from ragapi.api.params import KnowledgeBaseFilter
from ragapi.api.services import DatabaseDep, KnowledgeBasesDep, QueryLogDep, SettingsDep
from ragapi.core.errors import InvalidInput
from ragapi.tenants.context import Scope

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/analytics", summary="Volume, errors, latency per stage, cache, tokens, cost, feedback, gaps")
async def analytics(
    request: Request,
    db: DatabaseDep,
    query_log: QueryLogDep,
    settings: SettingsDep,
    knowledge_bases: KnowledgeBasesDep,
    start: Annotated[datetime | None, Query(description="Default: 7 days before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
    interval: Annotated[Literal["hour", "day"], Query()] = "day",
    group_by: Annotated[Literal["key", "user", "knowledge_base"] | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Superadmins: one tenant (default: all)")] = None,
    knowledge_base: KnowledgeBaseFilter = None,
) -> dict[str, Any]:
    principal = await principal_for_request(request)
    kb_id = None
    if principal.is_superadmin:
        await limit_principal(request, principal)
        scope = tenant_id
        if knowledge_base is not None:
            raise InvalidInput("knowledge_base is for a tenant's own admins; superadmins see whole tenants")
    else:
        if tenant_id is not None and tenant_id != principal.tenant_id:
            raise InvalidInput("tenant_id is for superadmins; your credential already names your tenant")
        tenant = await authorize(request, Scope.ADMIN)
        scope = tenant.tenant_id
        kb_id = await knowledge_bases.scope_of(tenant, knowledge_base)
    if query_log is not None:
        await query_log.flush()  # include queries this replica answered a moment ago
    end = end or datetime.now(UTC)
    try:
        start = start or end - timedelta(days=7)
    except OverflowError as exc:  # an end in the first week of year 1
        raise InvalidInput("end is too early to default start to a week before it; give start") from exc
    window = Window(start, end, interval, scope, group_by, kb_id)
    return await report(db, window, settings.analytics_low_score)
