"""Admins' console pages (analytics, API keys, users) and a superadmin's (tenants and their plans, and
analytics of any or every tenant). Reads go through the services the JSON API uses; changes are the JSON
API's own routes, called by the page's script."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request, Response

from ragapi.analytics.report import STAGES, Window, report
from ragapi.api.console import charts
from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize, limit_principal
from ragapi.api.services import DatabaseDep, KnowledgeBasesDep, QueryLogDep, SettingsDep
from ragapi.core.errors import Forbidden, InvalidInput
from ragapi.schemas import UserRole
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
CUSTOM = "custom"
HOURLY_DAYS = 2  # a custom range of this many days or fewer is drawn by the hour


@dataclass(frozen=True, slots=True)
class Range:
    """The span the analytics page shows: a preset, or two dates (both included, UTC)."""

    label: str
    start: datetime
    end: datetime
    interval: Literal["hour", "day"]


def _date(text: str | None, field: str) -> date:
    if not text:
        raise InvalidInput(f"{field}: choose a date", field)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: {text!r} is not a date (YYYY-MM-DD)", field) from None


def chosen_range(name: str, first: str | None, last: str | None, retention_days: int, now: datetime) -> Range:
    """The preset `name`, or with `custom` the dates `first` to `last`: in order, not in the future, and
    within the days the query log keeps (older rows are gone, so a longer range would mislead)."""
    if name in RANGES:
        label, span, interval = RANGES[name]
        return Range(label, now - span, now, interval)
    if name != CUSTOM:
        raise InvalidInput(f"range: one of {', '.join([*RANGES, CUSTOM])}", "range")
    start, end = _date(first, "from"), _date(last, "to")
    today = now.astimezone(UTC).date()
    oldest = today - timedelta(days=retention_days - 1)
    if start > end:
        raise InvalidInput("from: the first day comes after the last one", "from")
    if end > today:
        raise InvalidInput(f"to: {end} has not happened yet (today is {today}, UTC)", "to")
    if start < oldest:
        raise InvalidInput(
            f"from: the query log keeps {retention_days} days (QUERY_LOG_RETENTION_DAYS); start on {oldest} or later",
            "from",
        )
    days = (end - start).days + 1
    moment = datetime.combine(start, time(), UTC)
    return Range(
        f"{start} to {end}" if days > 1 else str(start),
        moment,
        moment + timedelta(days=days),
        "hour" if days <= HOURLY_DAYS else "day",
    )


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
    knowledge_bases: KnowledgeBasesDep,
    range: Annotated[str, Query(max_length=20)] = "7d",  # noqa: A002 - the query parameter's name
    first: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Superadmins: one tenant")] = None,
    knowledge_base: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Volume, errors, latency per stage, cache, tokens and cost, feedback, top and poorly answered queries,
    over a preset or chosen range, for the tenant or one of its knowledge bases (a superadmin: any tenant)."""
    tenants: list[Any] = []
    visible: list[Any] = []
    kb_id = None
    if principal.is_superadmin:
        await _superadmin(request, principal)
        scope = tenant_id
        tenants = await service.list_tenants(db, 500, 0)
    else:
        tenant = await authorize(request, Scope.ADMIN)
        scope = tenant.tenant_id
        visible = [kb for kb in await knowledge_bases.visible(tenant) if kb.status != "deleting"]
        kb_id = await knowledge_bases.scope_of(tenant, knowledge_base or None)
    form = {"range": range, "from": first or "", "to": last or "", "knowledge_base": knowledge_base or ""}
    page: dict[str, Any] = {
        "ranges": RANGES,
        "form": form,
        "tenants": tenants,
        "tenant_id": tenant_id,
        "knowledge_bases": visible,
        "retention_days": settings.query_log_retention_days,
    }
    try:
        chosen = chosen_range(range, first, last, settings.query_log_retention_days, datetime.now(UTC))
    except InvalidInput as exc:  # shown next to the field it names, with the form to correct it
        return render(request, "analytics.html", principal, 422, data=None, error=exc, **page)
    if query_log is not None:
        await query_log.flush()  # the questions asked a moment ago
    window = Window(chosen.start, chosen.end, chosen.interval, scope, None, kb_id)
    data = await report(db, window, settings.analytics_low_score)
    kb_name = next((kb.name for kb in visible if kb.id == kb_id), None)
    return render(
        request,
        "analytics.html",
        principal,
        data=data,
        charts=analytics_charts(data),
        range_label=chosen.label + (f" · {kb_name}" if kb_name else ""),
        error=None,
        **page,
    )


@router.get("/api-keys")
async def api_keys(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    keys = await list_api_keys(db, tenant.tenant_id)
    return render(request, "api_keys.html", principal, keys=keys, scopes=list(Scope))


@router.get("/users")
async def users_page(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    listed = await users.list_users(db, tenant.tenant_id)
    return render(request, "users.html", principal, users=listed, roles=get_args(UserRole))


@router.get("/tenants")
async def tenants(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    await _superadmin(request, principal)
    return render(request, "tenants.html", principal, tenants=await service.list_tenants(db, 500, 0))


@router.get("/tenants/{tenant_id}")
async def tenant_page(
    request: Request, principal: ConsoleUser, db: DatabaseDep, settings: SettingsDep, tenant_id: uuid.UUID
) -> Response:
    """A tenant's plan and limits as a form (an empty limit: the service's), sent to PATCH /v1/tenants/{id}."""
    await _superadmin(request, principal)
    defaults = {
        "rate_limit_per_minute": settings.tenant_rate_limit_per_minute,
        "monthly_query_quota": settings.monthly_query_quota,
        "monthly_ingest_bytes_quota": settings.monthly_ingest_bytes_quota,
        "max_document_bytes": settings.max_upload_bytes,
    }
    return render(request, "tenant.html", principal, tenant=await service.get_tenant(db, tenant_id), defaults=defaults)
