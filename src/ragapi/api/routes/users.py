"""/v1/users: a tenant admin manages its own tenant's users (RLS confines every statement to it; deleting
one, which the application role may not do, names the tenant in the statement)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from ragapi.api.dependencies import AdminTenant
from ragapi.api.routes.auth import user_out
from ragapi.api.services import ConversationsDep, DatabaseDep, SettingsDep
from ragapi.schemas import UserCreate, UserOut, UserUpdate
from ragapi.tenants import users
from ragapi.tenants.context import Role

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant) -> UserOut:
    user = await users.create_user(
        db, settings, tenant.tenant_id, body.email, body.password, Role(body.role), body.external_id
    )
    return user_out(user)


@router.get("", response_model=list[UserOut])
async def list_users(db: DatabaseDep, tenant: AdminTenant) -> list[UserOut]:
    return [user_out(u) for u in await users.list_users(db, tenant.tenant_id)]


@router.patch(
    "/{user_id}", response_model=UserOut, summary="Change a role or external id, or deactivate (tokens end at once)"
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant
) -> UserOut:
    role = Role(body.role) if body.role is not None else None
    external_id = body.external_id if "external_id" in body.model_fields_set else users.KEEP
    updated = await users.update_user(
        db,
        tenant.tenant_id,
        user_id,
        role,
        body.is_active,
        external_id=external_id,
        external_id_limit=settings.user_external_id_max_chars,
    )
    return user_out(updated)


@router.delete(
    "/{user_id}",
    status_code=204,
    summary="Delete a user for good: their sessions, group memberships and conversations go too",
    responses={404: {"description": "No such user in this tenant"}, 409: {"description": "Your own account"}},
)
async def delete_user(
    user_id: uuid.UUID, db: DatabaseDep, conversations: ConversationsDep, tenant: AdminTenant
) -> Response:
    acting = tenant.principal.id if tenant.principal.kind == "user" else None
    await users.delete_user(db, tenant.tenant_id, user_id, acting)
    await conversations.forget_user(tenant.tenant_id, user_id)
    return Response(status_code=204)
