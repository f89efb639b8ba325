"""A tenant's effective limits: its plan's values where set, the service defaults elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragapi.core.settings import Settings
from ragapi.tenants.context import TenantPlan
from ragapi.tenants.models import Tenant

# The tenants table's columns a plan is made of, for statements that read them next to a credential.
PLAN_COLUMNS = (
    "plan",
    "rate_limit_per_minute",
    "monthly_query_quota",
    "monthly_ingest_bytes_quota",
    "max_document_bytes",
)


def plan_for(tenant: Tenant, settings: Settings) -> TenantPlan:
    return plan_from_row({c: getattr(tenant, c) for c in PLAN_COLUMNS}, settings)


def plan_from_row(row: Mapping[str, Any], settings: Settings) -> TenantPlan:
    """From a row holding PLAN_COLUMNS (the credential lookups, which read them with the key or user)."""

    def pick(own: int | None, default: int | None) -> int | None:
        return own if own is not None else default

    return TenantPlan(
        name=row["plan"],
        rate_limit_per_minute=row["rate_limit_per_minute"] or settings.tenant_rate_limit_per_minute,
        monthly_query_quota=pick(row["monthly_query_quota"], settings.monthly_query_quota),
        monthly_ingest_bytes_quota=pick(row["monthly_ingest_bytes_quota"], settings.monthly_ingest_bytes_quota),
        max_document_bytes=row["max_document_bytes"] or settings.max_upload_bytes,
    )
