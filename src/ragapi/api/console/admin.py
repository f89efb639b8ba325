"""Admins' console pages (analytics, API keys, users) and a superadmin's (tenants, and analytics of any or
every tenant). Reads go through the services the JSON API uses; changes are the JSON API's own routes,
called by the page's script."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from ragapi.analytics.report import STAGES, Window, report
from ragapi.api.console import charts
from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize, limit_principal
from ragapi.api.services import DatabaseDep, QueryLogDep, SettingsDep
from ragapi.core.errors import Forbidden
from ragapi.tenants import service, users
from ragapi.tenants.api_keys import list_api_keys
from ragapi.tenants.context import Principal, Scope

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

RANGES: dict[str, tuple[str, timedelta, Literal["hour", "day"]]] = {
    "24h": ("Last 24 hours", timedelta(hours=24), "hour"),
    "7d": ("Last 7 days", timedelta(days=7), "day"),
    "30d": ("Last 30 days", timedelta(days=30), "day"),
    "90d": ("Last 90 days", timedelta(days=90), "day"),
}
RangeName = Literal["24h", "7d", "30d", "90d"]


def analytics_charts(data: dict[str, Any]) -> dict[str, Any]:
    """The report's series as the page's charts."""
    series = data["series"]
    buckets = [row["bucket"] for row in series]
    queries = [float(row["queries"]) for row in series]
    hit_rate = [100.0 * row["cache_hits"] / row["queries"] if row["queries"] else 0.0 for row in series]
    latency = data["latency_ms"]
    tokens = data["tokens"]
    feedback = data["feedback"]
    return {
        "queries": charts.bars_over_time(
            "chart-queries",
            "Queries",
            buckets,
            [charts.Series("queries", queries), charts.Series("errors", [float(r["errors"]) for r in series])],
        ),
        "latency": charts.horizontal_bars(
            "chart-latency",
            "Latency per stage",
            list(STAGES),
            [charts.Series(p, [float(latency[stage][p] or 0.0) for stage in STAGES]) for p in ("p50", "p95")],
            "ms",
        ),
        "p95": charts.bars_over_time(
            "chart-p95", "p95 latency", buckets, [charts.Series("p95", [float(r["p95_ms"] or 0) for r in series])], "ms"
        ),
        "cache": charts.bars_over_time(
            "chart-cache", "Cache hit rate", buckets, [charts.Series("hit rate", hit_rate)], "%"
        ),
        "cost": charts.bars_over_time(
            "chart-cost", "Cost", buckets, [charts.Series("cost", [float(r["cost_usd"]) for r in series])], " $"
        ),
        "tokens": charts.horizontal_bars(
            "chart-tokens",
            "Tokens",
            ["prompt", "completion", "embedding"],
            [charts.Series("tokens", [float(tokens[kind]) for kind in ("prompt", "completion", "embedding")])],
            "",
        ),
        "feedback": charts.horizontal_bars(
            "chart-feedback",
            "Feedback",
            ["positive", "negative"],
            [charts.Series("ratings", [float(feedback["positive"]), float(feedback["negative"])])],
            "",
        ),
    }


async def _superadmin(request: Request, principal: Principal) -> None:
    if not principal.is_superadmin:
        raise Forbidden("this page is for superadmins")
    await limit_principal(request, principal)


@router.get("/analytics")
async def analytics(
    request: Request,
    principal: ConsoleUser,
    db: DatabaseDep,
    query_log: QueryLogDep,
    settings: SettingsDep,
    range: RangeName = "7d",  # noqa: A002 - the query parameter's name
    tenant_id: Annotated[uuid.UUID | None, Query(description="Superadmins: one tenant")] = None,
) -> Response:
    """Volume, errors, latency per stage, cache, tokens and cost, feedback, top and poorly answered queries."""
    tenants: list[Any] = []
    if principal.is_superadmin:
        await _superadmin(request, principal)
        scope = tenant_id
        tenants = await service.list_tenants(db, 500, 0)
    else:
        scope = (await authorize(request, Scope.ADMIN)).tenant_id
    if query_log is not None:
        await query_log.flush()  # the questions asked a moment ago
    label, span, interval = RANGES[range]
    end = datetime.now(UTC)
    data = await report(db, Window(end - span, end, interval, scope), settings.analytics_low_score)
    return render(
        request,
        "analytics.html",
        principal,
        data=data,
        charts=analytics_charts(data),
        ranges=RANGES,
        chosen=range,
        range_label=label,
        tenants=tenants,
        tenant_id=tenant_id,
    )


@router.get("/api-keys")
async def api_keys(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    keys = await list_api_keys(db, tenant.tenant_id)
    return render(request, "api_keys.html", principal, keys=keys, scopes=list(Scope))


@router.get("/users")
async def users_page(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    return render(request, "users.html", principal, users=await users.list_users(db, tenant.tenant_id))


@router.get("/tenants")
async def tenants(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    await _superadmin(request, principal)
    return render(request, "tenants.html", principal, tenants=await service.list_tenants(db, 500, 0))
