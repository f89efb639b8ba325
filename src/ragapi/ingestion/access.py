"""Who may read a document: the whole tenant (no access list, the default), or the users, groups and
API keys its access list names (and the tenant's admin users, who read everything).

The list is stored on the document (`access`, as given, and `readers`, the ids in one array that its
chunks copy); row-level security compares `readers` with each request's view (`ragapi.core.access`,
migration 0018). Set at ingest and changed here; a change bumps the tenant's access version, so cached
answers stop being served to the views it may have changed.

Every id is checked in the tenant's session: an unknown one and another tenant's are the same 422,
naming it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core.access import EVERYTHING, DocumentAccess, ReaderView
from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.ingestion.models import Document
from ragapi.tenants.groups import known_users, unknown
from ragapi.tenants.models import ApiKey, Group


def check_size(access: DocumentAccess | None, limit: int) -> None:
    if access is not None and len(access.readers) > limit:
        raise InvalidInput(
            f"an access list names {len(access.readers)} users, groups and API keys; at most {limit} "
            "(MAX_ACCESS_ENTRIES)"
        )


async def check_access(session: AsyncSession, tenant_id: uuid.UUID, access: DocumentAccess | None) -> None:
    """InvalidInput naming every id that is none of the tenant's users, groups or keys (another tenant's
    are not visible here, so they read as unknown too)."""
    if access is None:
        return
    groups = (
        set(
            (
                await session.execute(
                    select(Group.id).where(col(Group.tenant_id) == tenant_id, col(Group.id).in_(list(access.groups)))
                )
            ).scalars()
        )
        if access.groups
        else set()
    )
    keys = (
        set(
            (
                await session.execute(
                    select(ApiKey.id).where(
                        col(ApiKey.tenant_id) == tenant_id, col(ApiKey.id).in_(list(access.api_keys))
                    )
                )
            ).scalars()
        )
        if access.api_keys
        else set()
    )
    missing = [
        *unknown("user", access.users, await known_users(session, tenant_id, access.users)),
        *unknown("group", access.groups, groups),
        *unknown("API key", access.api_keys, keys),
    ]
    if missing:
        raise InvalidInput("unknown in the access list: " + ", ".join(missing))


async def validate(db: Database, tenant_id: uuid.UUID, access: DocumentAccess | None, limit: int) -> None:
    """At ingest, before the job is recorded: the worker writes it as given."""
    check_size(access, limit)
    if access is not None:
        async with db.tenant_session(tenant_id) as session:
            await check_access(session, tenant_id, access)


def stored(access: DocumentAccess | None) -> dict[str, Any]:
    """A document's (or an ingest file's) columns for it."""
    if access is None:
        return {"access": None, "readers": None}
    return {"access": access.as_json(), "readers": access.readers}


async def apply_again(
    session: AsyncSession,
    document: Document,
    access: DocumentAccess | None,
    submitter: ReaderView | None,
) -> bool:
    """Bytes ingested again into the knowledge base holding `document` come with `access`: it becomes the
    document's (the trigger carries it to the chunks and bumps the access version), if it differs and the
    submitter could have set it with PUT: it reads the document, or manages access (`submitter` is
    everything). A submitter of None (the CLI, jobs from before) changes nothing. True if it changed."""
    if submitter is None or DocumentAccess.from_json(document.access) == access:
        return False
    if not submitter.reads(document.readers):
        return False
    await check_access(session, document.tenant_id, access)  # a member or key deleted since the submit
    await session.execute(
        update(Document)
        .where(col(Document.tenant_id) == document.tenant_id, col(Document.id) == document.id)
        .values(**stored(access))
    )
    return True


async def set_access(
    db: Database,
    tenant_id: uuid.UUID,
    document_ids: Sequence[uuid.UUID],
    access: DocumentAccess | None,
    limit: int,
    allowed: Sequence[uuid.UUID] | None = None,
    manage: bool = False,
) -> list[Document]:
    """Give documents (each one the caller can see, in a knowledge base it may use) this access list;
    NotFound naming the first one it cannot see, and nothing changes. A caller that `manage`s access (the
    admin scope) finds every document of the tenant by id, readable or not. The caller may restrict a
    document away from itself: the documents are read back whole, for the caller to show what it may."""
    check_size(access, limit)
    ids = list(dict.fromkeys(document_ids))
    async with db.tenant_session(tenant_id, view=EVERYTHING if manage else None) as session:
        query = select(Document.id).where(col(Document.tenant_id) == tenant_id, col(Document.id).in_(ids))
        if allowed is not None:
            query = query.where(col(Document.knowledge_base_id).in_(list(allowed)))
        visible = set((await session.execute(query.with_for_update())).scalars())
        for document_id in ids:
            if document_id not in visible:
                raise NotFound(f"no such document: {document_id}")
        await check_access(session, tenant_id, access)
        # The caller's view chose the documents; the change may take one out of that view (restricted away
        # from the caller), and PostgreSQL refuses an UPDATE whose new row its SELECT policy would hide: the
        # write itself reads as everything.
        await session.execute(text("SELECT set_config('app.readers', :v, true)"), {"v": EVERYTHING.setting})
        columns = stored(access)
        await session.execute(
            update(Document)
            .where(col(Document.tenant_id) == tenant_id, col(Document.id).in_(ids))
            .values(access=columns["access"], readers=columns["readers"])
        )
    async with db.tenant_session(tenant_id, view=EVERYTHING) as session:
        rows = (await session.execute(select(Document).where(col(Document.id).in_(ids)))).scalars()
        by_id = {d.id: d for d in rows}
    return [by_id[i] for i in ids]
