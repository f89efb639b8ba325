"""Monthly budgets hold under concurrency: the charge is one conditional upsert."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from core.database import Database
from core.errors import QuotaExceeded
from tenants import quotas
from tenants.context import TenantPlan
from tests.conftest import TenantHandle


def plan(queries: int | None = None, ingest: int | None = None) -> TenantPlan:
    return TenantPlan("test", 1000, queries, ingest, 1 << 20)


async def test_concurrent_charges_never_overspend(db: Database, tenant: TenantHandle) -> None:
    results = await asyncio.gather(
        *(quotas.charge(db, tenant.tenant_id, plan(queries=5), queries=1) for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, quotas.Usage) for r in results) == 5
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, quotas.Usage))
    assert (await quotas.usage(db, tenant.tenant_id)).queries == 5


async def test_bytes_budget_and_a_single_oversized_charge(db: Database, tenant: TenantHandle) -> None:
    with pytest.raises(QuotaExceeded):
        await quotas.charge(db, tenant.tenant_id, plan(ingest=10), ingest_bytes=11)
    assert (await quotas.charge(db, tenant.tenant_id, plan(ingest=10), ingest_bytes=10)).ingest_bytes == 10
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.charge(db, tenant.tenant_id, plan(ingest=10), ingest_bytes=1)
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after_s)
    unlimited = await quotas.charge(db, tenant.tenant_id, plan(), queries=3, ingest_bytes=1000)
    assert unlimited.ingest_bytes == 1010 and unlimited.queries == 3


async def test_admission_charges_concurrently_without_overspending(db: Database, tenant: TenantHandle) -> None:
    """Admission's one statement (charge and cache scope) holds the quota like the charge alone."""
    results = await asyncio.gather(
        *(quotas.charge_query(db, tenant.tenant_id, plan(queries=5)) for _ in range(20)), return_exceptions=True
    )
    admitted = [r for r in results if isinstance(r, quotas.Admission)]
    assert len(admitted) == 5 and sorted(a.usage.queries for a in admitted) == [1, 2, 3, 4, 5]
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, quotas.Admission))
    assert all(a.cache_scope["cache_enabled"] is True and a.cache_scope["knowledge_base"] is None for a in admitted)
    assert all(a.nearest is None for a in admitted)  # asked for no search
    with pytest.raises(QuotaExceeded):
        await quotas.charge_query(db, tenant.tenant_id, plan(queries=0))  # refused before the database


async def test_admission_runs_as_the_application_role_in_the_tenants_scope(
    db: Database, tenant: TenantHandle, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """No transaction around it: the function enters the tenant's scope itself, and row-level security
    then holds its reads and its charge to that tenant."""
    other = await make_tenant()
    await quotas.charge(db, other.tenant_id, plan(), queries=7)
    async with db.admin_session() as session:
        await session.execute(
            text("SELECT * FROM admit_query(:t, :p, NULL)"), {"t": tenant.tenant_id, "p": quotas.current_period()}
        )
        role, scope, sync = (
            await session.execute(
                text("SELECT current_user, current_setting('app.tenant_id'), current_setting('synchronous_commit')")
            )
        ).one()
        visible = (await session.execute(text("SELECT tenant_id FROM tenant_usage"))).scalars().all()
    assert (role, scope, sync) == (db.app_role, str(tenant.tenant_id), "off")
    assert visible == [tenant.tenant_id]  # the other tenant's usage row exists, but not for this scope


def test_periods_are_calendar_months_in_utc() -> None:
    assert quotas.current_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 1)
    assert quotas.seconds_to_next_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 61
    assert quotas.seconds_to_next_period(datetime(2026, 2, 28, 0, 0, tzinfo=UTC)) == 86_401
