"""Admission: one statement that charges the tenant's query quota and reads its cache scope, holding the
quota under concurrency, and running as the application role in the tenant's scope."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text

from ragapi.answering.admission import AdmissionStore, Admitted
from ragapi.core.database import Database
from ragapi.core.errors import QuotaExceeded
from ragapi.tenants import quotas
from ragapi.tenants.context import Principal, Scope, TenantContext, TenantPlan
from tests.conftest import TenantHandle


def plan(queries: int | None = None) -> TenantPlan:
    return TenantPlan("test", 1000, queries, None, 1 << 20)


def context(
    tenant_id: uuid.UUID, limits: TenantPlan, knowledge_bases: frozenset[uuid.UUID] | None = None
) -> TenantContext:
    """A key of the tenant, restricted to `knowledge_bases` when given."""
    principal = Principal("key", uuid.uuid4(), tenant_id, frozenset({Scope.QUERY}), plan=limits)
    if knowledge_bases is not None:
        principal = replace(principal, knowledge_base_ids=knowledge_bases)
    return TenantContext(tenant_id, principal, limits)


async def test_admission_charges_concurrently_without_overspending(db: Database, tenant: TenantHandle) -> None:
    """Admission's one statement (charge and cache scope) holds the quota like the charge alone."""
    results = await asyncio.gather(
        *(AdmissionStore(db).admit(context(tenant.tenant_id, plan(queries=5)), 1, None) for _ in range(20)),
        return_exceptions=True,
    )
    admitted = [r for r in results if isinstance(r, Admitted)]
    assert len(admitted) == 5 and sorted(a.usage.queries for a in admitted) == [1, 2, 3, 4, 5]
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, Admitted))
    assert all(a.scope.enabled and a.scope.kbs == () for a in admitted)
    assert all(a.nearest is None for a in admitted)  # asked for no search
    with pytest.raises(QuotaExceeded):
        await AdmissionStore(db).admit(
            context(tenant.tenant_id, plan(queries=0)), 1, None
        )  # refused before the database


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


async def test_a_batch_is_charged_whole_or_not_at_all(db: Database, tenant: TenantHandle) -> None:
    store = AdmissionStore(db)
    assert (await store.admit(context(tenant.tenant_id, plan(queries=5)), 3, None)).usage.queries == 3
    with pytest.raises(QuotaExceeded):
        await store.admit(context(tenant.tenant_id, plan(queries=5)), 3, None)
    assert (await quotas.usage(db, tenant.tenant_id)).queries == 3
    assert (
        await store.admit(context(tenant.tenant_id, plan(queries=5)), 0, None)
    ).usage.queries == 3  # charged already
