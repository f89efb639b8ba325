"""/v1/api-keys: a tenant admin's keys for machines. The key is in the creation response only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from ragapi.api.dependencies import AdminTenant
from ragapi.api.services import DatabaseDep, KnowledgeBasesDep
from ragapi.core.errors import InvalidInput
from ragapi.retrieval.knowledge_bases import parse_refs
from ragapi.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from ragapi.tenants.api_keys import create_api_key, list_api_keys, revoke_api_key
from ragapi.tenants.context import Scope
from ragapi.tenants.models import ApiKey

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=key.scopes,
        knowledge_base_ids=key.knowledge_base_ids,
        rate_limit_per_minute=key.rate_limit_per_minute,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(
    body: ApiKeyCreate, db: DatabaseDep, knowledge_bases: KnowledgeBasesDep, tenant: AdminTenant
) -> ApiKeyCreated:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a timezone, e.g. 2027-01-01T00:00:00Z")
    refs = parse_refs(body.knowledge_bases)
    restricted = frozenset(await knowledge_bases.ids(tenant, refs)) if refs is not None else None
    created = await create_api_key(
        db,
        tenant.tenant_id,
        body.name,
        [Scope(s) for s in body.scopes],
        granted_by=tenant.scopes,
        created_by=tenant.principal.id,
        expires_at=body.expires_at,
        rate_limit_per_minute=body.rate_limit_per_minute,
        knowledge_base_ids=restricted,
        creator_knowledge_bases=tenant.knowledge_base_ids,
    )
    return ApiKeyCreated(**key_out(created.key).model_dump(), api_key=created.plaintext)


@router.get("", response_model=list[ApiKeyOut])
async def list_keys(db: DatabaseDep, tenant: AdminTenant) -> list[ApiKeyOut]:
    return [key_out(k) for k in await list_api_keys(db, tenant.tenant_id)]


@router.delete("/{key_id}", status_code=204, summary="Revoke a key; it fails from the next request on")
async def revoke_key(key_id: uuid.UUID, db: DatabaseDep, tenant: AdminTenant) -> Response:
    await revoke_api_key(db, tenant.tenant_id, key_id)
    return Response(status_code=204)
