"""/v1/tenants (superadmin: create, list, read, change plan or status) and /v1/tenant (a tenant's own
limits and this month's usage)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ragapi.api.dependencies import QueryTenant, Superadmin
from ragapi.api.services import DatabaseDep
from ragapi.core import inputs
from ragapi.schemas import LimitsOut, MyTenantOut, TenantCreate, TenantCreated, TenantOut, TenantUpdate, UsageOut
from ragapi.tenants import quotas, service
from ragapi.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["tenants"])


def tenant_out(t: Tenant) -> TenantOut:
    return TenantOut(
        id=t.id,
        name=t.name,
        status=t.status,
        plan=t.plan,
        rate_limit_per_minute=t.rate_limit_per_minute,
        monthly_query_quota=t.monthly_query_quota,
        monthly_ingest_bytes_quota=t.monthly_ingest_bytes_quota,
        max_document_bytes=t.max_document_bytes,
        allow_registration=t.allow_registration,
        registration_role=t.registration_role,
        cache_enabled=t.cache_enabled,
        created_at=t.created_at,
    )


@router.post("/tenants", response_model=TenantCreated, status_code=201)
async def create_tenant(body: TenantCreate, db: DatabaseDep, _admin: Superadmin) -> TenantCreated:
    fields = body.model_dump(exclude_none=True, exclude={"name"})
    created = await service.create_tenant(db, body.name, **fields)
    tenant = await service.get_tenant(db, created.tenant_id)
    return TenantCreated(**tenant_out(tenant).model_dump(), api_key=created.api_key)


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants(
    db: DatabaseDep,
    _admin: Superadmin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=inputs.INT64_MAX)] = 0,
) -> list[TenantOut]:
    return [tenant_out(t) for t in await service.list_tenants(db, limit, offset)]


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(tenant_id: uuid.UUID, db: DatabaseDep, _admin: Superadmin) -> TenantOut:
    return tenant_out(await service.get_tenant(db, tenant_id))


@router.patch("/tenants/{tenant_id}", response_model=TenantOut, summary="Change a plan, or suspend (403 everywhere)")
async def update_tenant(tenant_id: uuid.UUID, body: TenantUpdate, db: DatabaseDep, _admin: Superadmin) -> TenantOut:
    changes = body.model_dump(exclude_unset=True)
    return tenant_out(await service.update_tenant(db, tenant_id, changes))


@router.get("/tenant", response_model=MyTenantOut, summary="My tenant: its limits and this month's usage")
async def my_tenant(db: DatabaseDep, tenant: QueryTenant) -> MyTenantOut:
    own = await service.get_tenant(db, tenant.tenant_id)
    used = await quotas.usage(db, tenant.tenant_id)
    plan = tenant.plan
    return MyTenantOut(
        id=own.id,
        name=own.name,
        limits=LimitsOut(
            plan=plan.name,
            rate_limit_per_minute=plan.rate_limit_per_minute,
            monthly_query_quota=plan.monthly_query_quota,
            monthly_ingest_bytes_quota=plan.monthly_ingest_bytes_quota,
            max_document_bytes=plan.max_document_bytes,
        ),
        usage=UsageOut(period=used.period, queries=used.queries, ingest_bytes=used.ingest_bytes),
    )
