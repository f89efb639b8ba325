"""Groups of a tenant's users, which document access lists name (`ragapi.ingestion.access`).

Every function runs in the tenant's session (row-level security), so another tenant's group or user is
simply not there: NotFound, or, in a list of ids, "unknown", never "someone else's". Every change of
membership bumps the tenant's access version (a trigger, migration 0018), which the answer caches
partition by.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core.access import MAX_GROUP_NAME_CHARS
from ragapi.core.database import Database
from ragapi.core.errors import Conflict, InvalidInput, NotFound
from ragapi.tenants.models import Group, GroupMember, User

MAX_NAME_CHARS = MAX_GROUP_NAME_CHARS
NOT_FOUND = "no such group"
# concurrent sign-ins may create the same group: the unique name decides, nobody fails
_CREATE_MISSING = text(
    "INSERT INTO groups (id, tenant_id, name) "
    "SELECT i, :tenant, n FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[])) AS g(i, n) "
    "ON CONFLICT (tenant_id, name) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: uuid.UUID
    name: str
    created_at: datetime | None
    member_ids: tuple[uuid.UUID, ...]


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidInput(f"a group name has 1 to {MAX_NAME_CHARS} characters")
    return name


async def _info(session: AsyncSession, group: Group) -> GroupInfo:
    members = (
        await session.execute(
            select(GroupMember.user_id).where(col(GroupMember.group_id) == group.id).order_by(col(GroupMember.user_id))
        )
    ).scalars()
    return GroupInfo(group.id, group.name, group.created_at, tuple(members))


async def _group(session: AsyncSession, tenant_id: uuid.UUID, group_id: uuid.UUID, lock: bool = False) -> Group:
    query = select(Group).where(col(Group.tenant_id) == tenant_id, col(Group.id) == group_id)
    group = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if group is None:
        raise NotFound(NOT_FOUND)
    return group


async def create_group(db: Database, tenant_id: uuid.UUID, name: str) -> GroupInfo:
    group = Group(tenant_id=tenant_id, name=check_name(name))
    try:
        async with db.tenant_session(tenant_id) as session:
            session.add(group)
            await session.flush()
            await session.refresh(group)
    except IntegrityError as exc:
        raise Conflict(f"a group named {group.name!r} already exists") from exc
    return GroupInfo(group.id, group.name, group.created_at, ())


async def list_groups(db: Database, tenant_id: uuid.UUID) -> list[GroupInfo]:
    async with db.tenant_session(tenant_id) as session:
        groups = (
            await session.execute(
                select(Group).where(col(Group.tenant_id) == tenant_id).order_by(col(Group.name), col(Group.id))
            )
        ).scalars()
        return [await _info(session, g) for g in groups]


async def get_group(db: Database, tenant_id: uuid.UUID, group_id: uuid.UUID) -> GroupInfo:
    async with db.tenant_session(tenant_id) as session:
        return await _info(session, await _group(session, tenant_id, group_id))


async def rename_group(db: Database, tenant_id: uuid.UUID, group_id: uuid.UUID, name: str) -> GroupInfo:
    name = check_name(name)
    try:
        async with db.tenant_session(tenant_id) as session:
            group = await _group(session, tenant_id, group_id, lock=True)
            group.name = name
            session.add(group)
            await session.flush()
            return await _info(session, group)
    except IntegrityError as exc:
        raise Conflict(f"a group named {name!r} already exists") from exc


async def delete_group(db: Database, tenant_id: uuid.UUID, group_id: uuid.UUID) -> None:
    """Its members leave it (which changes what they may read); access lists naming it keep its id, which
    then matches nobody."""
    async with db.tenant_session(tenant_id) as session:
        await session.delete(await _group(session, tenant_id, group_id, lock=True))


async def known_users(session: AsyncSession, tenant_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    rows = await session.execute(select(User.id).where(col(User.tenant_id) == tenant_id, col(User.id).in_(wanted)))
    return set(rows.scalars())


def unknown(kind: str, wanted: Iterable[uuid.UUID], known: set[uuid.UUID]) -> list[str]:
    return [f"{kind} {i}" for i in sorted(set(wanted) - known, key=str)]


async def add_members(
    db: Database, tenant_id: uuid.UUID, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> GroupInfo:
    """Idempotent; an id that is not one of the tenant's users is refused (422, naming it) and nothing
    changes."""
    async with db.tenant_session(tenant_id) as session:
        group = await _group(session, tenant_id, group_id, lock=True)
        missing = unknown("user", user_ids, await known_users(session, tenant_id, user_ids))
        if missing:
            raise InvalidInput("unknown " + ", ".join(missing))
        present = set(
            (
                await session.execute(
                    select(GroupMember.user_id).where(
                        col(GroupMember.group_id) == group_id, col(GroupMember.user_id).in_(sorted(set(user_ids)))
                    )
                )
            ).scalars()
        )
        new = sorted(set(user_ids) - present)
        if new:
            await session.execute(
                insert(GroupMember),
                [{"tenant_id": tenant_id, "group_id": group_id, "user_id": u} for u in new],
            )
        return await _info(session, group)


async def remove_members(
    db: Database, tenant_id: uuid.UUID, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> GroupInfo:
    """Idempotent: removing someone who is not a member changes nothing."""
    async with db.tenant_session(tenant_id) as session:
        group = await _group(session, tenant_id, group_id, lock=True)
        if user_ids:
            await session.execute(
                delete(GroupMember).where(
                    col(GroupMember.group_id) == group_id, col(GroupMember.user_id).in_(sorted(set(user_ids)))
                )
            )
        return await _info(session, group)


async def sync_memberships(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, group_names: Sequence[str]
) -> list[GroupInfo]:
    """An identity provider's word on a user's groups (e.g. an OIDC groups claim at sign-in): the groups
    named that do not exist are created, and the user's memberships become exactly those groups. Returns
    them, by name. Names are trimmed; blank and duplicate ones are ignored; an over-long one is refused
    (InvalidInput). A user who is not the tenant's is NotFound."""
    names = sorted({check_name(n) for n in group_names if n.strip()})
    async with db.tenant_session(tenant_id) as session:
        if not await known_users(session, tenant_id, [user_id]):
            raise NotFound("no such user")
        if names:
            await session.execute(
                _CREATE_MISSING,
                {"tenant": tenant_id, "ids": [uuid.uuid4() for _ in names], "names": names},
            )
        groups = (
            list(
                (
                    await session.execute(
                        select(Group)
                        .where(col(Group.tenant_id) == tenant_id, col(Group.name).in_(names))
                        .order_by(col(Group.name))
                    )
                ).scalars()
            )
            if names
            else []
        )
        wanted = {g.id for g in groups}
        current = set(
            (await session.execute(select(GroupMember.group_id).where(col(GroupMember.user_id) == user_id))).scalars()
        )
        if current - wanted:
            await session.execute(
                delete(GroupMember).where(
                    col(GroupMember.user_id) == user_id, col(GroupMember.group_id).in_(sorted(current - wanted))
                )
            )
        if wanted - current:
            await session.execute(
                insert(GroupMember),
                [{"tenant_id": tenant_id, "group_id": g, "user_id": user_id} for g in sorted(wanted - current)],
            )
        return [await _info(session, g) for g in groups]


async def group_ids_named(
    session: AsyncSession, tenant_id: uuid.UUID, refs: Sequence[str]
) -> tuple[set[uuid.UUID], list[str]]:
    """The groups `refs` name (ids or names) and the refs that name none of the tenant's."""
    ids: list[uuid.UUID] = []
    for ref in refs:
        try:
            ids.append(uuid.UUID(ref))
        except ValueError:
            continue
    rows = (
        await session.execute(
            select(Group.id, Group.name).where(
                col(Group.tenant_id) == tenant_id, (col(Group.name).in_(list(refs))) | (col(Group.id).in_(ids))
            )
        )
    ).all()
    found = {r.id for r in rows}
    known_refs = {r.name for r in rows} | {str(r.id) for r in rows}
    return found, [r for r in refs if r not in known_refs]
