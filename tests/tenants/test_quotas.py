"""Monthly budgets hold under concurrency: the charge is one conditional upsert."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from ragapi.core.database import Database
from ragapi.core.errors import QuotaExceeded
from ragapi.tenants import quotas
from ragapi.tenants.context import TenantPlan
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


def test_periods_are_calendar_months_in_utc() -> None:
    assert quotas.current_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 1)
    assert quotas.seconds_to_next_period(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 61
    assert quotas.seconds_to_next_period(datetime(2026, 2, 28, 0, 0, tzinfo=UTC)) == 86_401
