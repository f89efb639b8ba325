"""/v1/users: a tenant admin manages its own tenant's users (RLS confines every statement to it)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ragapi.api.dependencies import AdminTenant, State
from ragapi.api.routes.auth import user_out
from ragapi.api.schemas import UserCreate, UserOut, UserUpdate
from ragapi.tenants import users
from ragapi.tenants.context import Role

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, state: State, tenant: AdminTenant) -> UserOut:
    user = await users.create_user(
        state.db, state.settings, tenant.tenant_id, body.email, body.password, Role(body.role)
    )
    return user_out(user)


@router.get("", response_model=list[UserOut])
async def list_users(state: State, tenant: AdminTenant) -> list[UserOut]:
    return [user_out(u) for u in await users.list_users(state.db, tenant.tenant_id)]


@router.patch("/{user_id}", response_model=UserOut, summary="Change a role, or deactivate (tokens end at once)")
async def update_user(user_id: uuid.UUID, body: UserUpdate, state: State, tenant: AdminTenant) -> UserOut:
    role = Role(body.role) if body.role is not None else None
    return user_out(await users.update_user(state.db, tenant.tenant_id, user_id, role, body.is_active))
