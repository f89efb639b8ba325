"""Who reads what, in the console: groups (admins), a document's own page (its metadata and its readers),
and the readers an admin picks from when setting access, one document's or many at once.

As on every console page, reads go through the services the JSON API uses, in the signed-in user's
tenant; changes are the JSON API's own routes (`/v1/groups`, `PATCH /v1/documents/{id}`,
`PUT /v1/documents/{id}/access`, `PUT /v1/documents/access`), called by the page's script.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize
from ragapi.api.services import DatabaseDep, IngestionDep, KnowledgeBasesDep
from ragapi.core.access import DocumentAccess
from ragapi.core.database import Database
from ragapi.tenants import groups, users
from ragapi.tenants.api_keys import list_api_keys
from ragapi.tenants.context import Scope, TenantContext
from ragapi.tenants.groups import GroupInfo
from ragapi.tenants.models import ApiKey, User

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Readers:
    """What an access list may name: the tenant's users, groups and API keys. Deactivated users and revoked
    keys are offered only where a list already names them, so that saving it again keeps them."""

    users: list[User]
    groups: list[GroupInfo]
    api_keys: list[ApiKey]

    def offered(self, access: DocumentAccess | None) -> Readers:
        named = set(access.readers) if access is not None else set()
        return Readers(
            [u for u in self.users if u.is_active or u.id in named],
            self.groups,
            [k for k in self.api_keys if k.revoked_at is None or k.id in named],
        )

    def labels(self, access: DocumentAccess) -> list[str]:
        """The readers an access list names, for people: e-mail addresses, then groups, then keys."""
        names = {u.id: u.email for u in self.users}
        names |= {g.id: f"group {g.name}" for g in self.groups}
        names |= {k.id: f"key {k.name}" for k in self.api_keys}
        return [names.get(reader, str(reader)) for reader in access.readers]


async def readers_for(db: Database, tenant: TenantContext) -> Readers | None:
    """For an admin, who an access list may name; None for anyone else (the lists are admins' to see)."""
    if not tenant.allows(Scope.ADMIN):
        return None
    return Readers(
        await users.list_users(db, tenant.tenant_id),
        await groups.list_groups(db, tenant.tenant_id),
        await list_api_keys(db, tenant.tenant_id),
    )


@router.get("/groups")
async def groups_page(request: Request, principal: ConsoleUser, db: DatabaseDep) -> Response:
    tenant = await authorize(request, Scope.ADMIN)
    return render(request, "groups.html", principal, groups=await groups.list_groups(db, tenant.tenant_id))


@router.get("/groups/{group_id}")
async def group_page(request: Request, group_id: uuid.UUID, principal: ConsoleUser, db: DatabaseDep) -> Response:
    """One group: rename it, its members (remove one), the tenant's other users (add some), delete it."""
    tenant = await authorize(request, Scope.ADMIN)
    group = await groups.get_group(db, tenant.tenant_id, group_id)
    everyone = await users.list_users(db, tenant.tenant_id)
    members = set(group.member_ids)
    return render(
        request,
        "group.html",
        principal,
        group=group,
        members=[u for u in everyone if u.id in members],
        others=[u for u in everyone if u.id not in members and u.is_active],
    )


@router.get("/documents/{document_id}")
async def document_page(
    request: Request,
    document_id: uuid.UUID,
    principal: ConsoleUser,
    db: DatabaseDep,
    ingestion: IngestionDep,
    knowledge_bases: KnowledgeBasesDep,
) -> Response:
    """A document: what it is, its metadata (editable with the ingest scope), who may read it (set by
    admins), and its deletion. One the user may not read is a 404, as in the API."""
    tenant = await authorize(request, Scope.QUERY)
    document = await ingestion.document(tenant, document_id)
    kb = next((k for k in await knowledge_bases.visible(tenant) if k.id == document.knowledge_base_id), None)
    access = DocumentAccess.from_json(document.access)
    readers = await readers_for(db, tenant)
    return render(
        request,
        "document.html",
        principal,
        document=document,
        kb=kb,
        access=access,
        readers=readers.offered(access) if readers is not None else None,
        reader_labels=readers.labels(access) if readers is not None and access is not None else [],
        metadata_json=json.dumps(document.metadata_, indent=2, ensure_ascii=False, sort_keys=True),
    )
