"""/v1/groups: a tenant admin's groups of users, which document access lists name (RLS confines every
statement to the tenant; another tenant's group is a 404, another tenant's user an unknown one)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from ragapi.api.dependencies import AdminTenant
from ragapi.api.services import DatabaseDep, SettingsDep
from ragapi.core.errors import InvalidInput
from ragapi.schemas import GroupCreate, GroupMembers, GroupOut, GroupRename
from ragapi.tenants import groups
from ragapi.tenants.groups import GroupInfo

router = APIRouter(prefix="/v1/groups", tags=["groups"])


def _out(g: GroupInfo) -> GroupOut:
    return GroupOut(group_id=g.id, name=g.name, created_at=g.created_at, members=list(g.member_ids))


@router.post("", response_model=GroupOut, status_code=201)
async def create_group(body: GroupCreate, db: DatabaseDep, tenant: AdminTenant) -> GroupOut:
    """409 when the tenant has a group of that name."""
    return _out(await groups.create_group(db, tenant.tenant_id, body.name))


@router.get("", response_model=list[GroupOut])
async def list_groups(db: DatabaseDep, tenant: AdminTenant) -> list[GroupOut]:
    return [_out(g) for g in await groups.list_groups(db, tenant.tenant_id)]


@router.get("/{group_id}", response_model=GroupOut)
async def get_group(group_id: uuid.UUID, db: DatabaseDep, tenant: AdminTenant) -> GroupOut:
    return _out(await groups.get_group(db, tenant.tenant_id, group_id))


@router.patch("/{group_id}", response_model=GroupOut, summary="Rename a group")
async def rename_group(group_id: uuid.UUID, body: GroupRename, db: DatabaseDep, tenant: AdminTenant) -> GroupOut:
    return _out(await groups.rename_group(db, tenant.tenant_id, group_id, body.name))


@router.delete("/{group_id}", status_code=204)
async def delete_group(group_id: uuid.UUID, db: DatabaseDep, tenant: AdminTenant) -> Response:
    await groups.delete_group(db, tenant.tenant_id, group_id)
    return Response(status_code=204)


def _members(body: GroupMembers, limit: int) -> list[uuid.UUID]:
    if len(body.user_ids) > limit:
        raise InvalidInput(f"at most {limit} users per request (MAX_ACCESS_ENTRIES)")
    return body.user_ids


@router.post("/{group_id}/members", response_model=GroupOut, summary="Add users (422 naming unknown ones)")
async def add_members(
    group_id: uuid.UUID, body: GroupMembers, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant
) -> GroupOut:
    user_ids = _members(body, settings.max_access_entries)
    return _out(await groups.add_members(db, tenant.tenant_id, group_id, user_ids))


@router.post("/{group_id}/members/remove", response_model=GroupOut, summary="Remove users")
async def remove_members(
    group_id: uuid.UUID, body: GroupMembers, db: DatabaseDep, settings: SettingsDep, tenant: AdminTenant
) -> GroupOut:
    user_ids = _members(body, settings.max_access_entries)
    return _out(await groups.remove_members(db, tenant.tenant_id, group_id, user_ids))


@router.delete("/{group_id}/members/{user_id}", response_model=GroupOut, summary="Remove one user")
async def remove_member(group_id: uuid.UUID, user_id: uuid.UUID, db: DatabaseDep, tenant: AdminTenant) -> GroupOut:
    return _out(await groups.remove_members(db, tenant.tenant_id, group_id, [user_id]))
