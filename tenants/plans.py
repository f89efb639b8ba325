"""A tenant's effective limits: its plan's values where set, the service defaults elsewhere."""

from __future__ import annotations

from core.settings import Settings
from tenants.context import TenantPlan
from tenants.models import Tenant


def plan_for(tenant: Tenant, settings: Settings) -> TenantPlan:
    def pick(own: int | None, default: int | None) -> int | None:
        return own if own is not None else default

    return TenantPlan(
        name=tenant.plan,
        rate_limit_per_minute=tenant.rate_limit_per_minute or settings.tenant_rate_limit_per_minute,
        monthly_query_quota=pick(tenant.monthly_query_quota, settings.monthly_query_quota),
        monthly_ingest_bytes_quota=pick(tenant.monthly_ingest_bytes_quota, settings.monthly_ingest_bytes_quota),
        max_document_bytes=tenant.max_document_bytes or settings.max_upload_bytes,
    )
