"""Monthly per-tenant budgets (queries, ingested bytes), charged atomically before the work is done.

One row per tenant and calendar month (UTC). The charge is a single upsert whose WHERE clause refuses
to pass the quota, so concurrent requests on every replica can never overspend it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.core.database import Database
from ragapi.core.errors import QuotaExceeded
from ragapi.tenants.context import TenantPlan

_CHARGE = text("SELECT * FROM charge_usage(:tid, :period, :queries, :bytes, :query_quota, :bytes_quota)")


@dataclass(frozen=True, slots=True)
class Usage:
    period: date
    queries: int
    ingest_bytes: int


def current_period(now: datetime | None = None) -> date:
    now = now or datetime.now(UTC)
    return date(now.year, now.month, 1)


def seconds_to_next_period(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    nxt = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return int((nxt - now).total_seconds()) + 1


async def charge(
    db: Database, tenant_id: uuid.UUID, plan: TenantPlan, queries: int = 0, ingest_bytes: int = 0
) -> Usage:
    """Add to this month's usage, or raise QuotaExceeded (and add nothing) if it would pass a quota."""
    # A counter, not a record of truth: a crash may forget the last few milliseconds of usage, and in
    # exchange the hot path does not wait for a WAL flush on every query.
    async with db.tenant_session(tenant_id, durable=False) as session:
        return await charge_in(session, tenant_id, plan, queries, ingest_bytes)


async def charge_in(
    session: AsyncSession, tenant_id: uuid.UUID, plan: TenantPlan, queries: int = 0, ingest_bytes: int = 0
) -> Usage:
    """`charge` inside a caller's tenant transaction, for callers that read more in the same one."""
    period = current_period()
    row = None
    if not over_an_empty_month(plan, queries, ingest_bytes):
        params = {"tid": tenant_id, "period": period, "queries": queries, "bytes": ingest_bytes}
        quotas = {"query_quota": plan.monthly_query_quota, "bytes_quota": plan.monthly_ingest_bytes_quota}
        row = (await session.execute(_CHARGE, params | quotas)).first()
    if row is None:
        raise quota_refusal(plan, "query" if queries else "ingest")
    return Usage(period, int(row[0]), int(row[1]))


def over_an_empty_month(plan: TenantPlan, queries: int, ingest_bytes: int) -> bool:
    return (plan.monthly_query_quota is not None and queries > plan.monthly_query_quota) or (
        plan.monthly_ingest_bytes_quota is not None and ingest_bytes > plan.monthly_ingest_bytes_quota
    )


def quota_refusal(plan: TenantPlan, what: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"the tenant's monthly {what} quota is spent (plan '{plan.name}')", retry_after_s=seconds_to_next_period()
    )


async def usage(db: Database, tenant_id: uuid.UUID) -> Usage:
    period = current_period()
    async with db.tenant_session(tenant_id) as session:
        row = (
            await session.execute(
                text("SELECT queries, ingest_bytes FROM tenant_usage WHERE tenant_id = :tid AND period = :p"),
                {"tid": tenant_id, "p": period},
            )
        ).first()
    return Usage(period, int(row[0]), int(row[1])) if row else Usage(period, 0, 0)
