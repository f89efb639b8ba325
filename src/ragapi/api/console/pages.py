"""A tenant's console pages: what they show is read through the same services as the JSON API, in the
signed-in user's tenant; what they change, the page's script sends to the JSON API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ragapi.api.console.access import Readers, readers_for
from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize
from ragapi.api.services import ConversationsDep, DatabaseDep, IngestionDep, KnowledgeBasesDep, SettingsDep
from ragapi.core import inputs
from ragapi.core.database import Database
from ragapi.tenants.context import Scope, TenantContext

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

LIST_LIMIT = 50
PAGE_SIZE = 25


@router.get("/ask")
async def ask(
    request: Request,
    principal: ConsoleUser,
    conversations: ConversationsDep,
    knowledge_bases: KnowledgeBasesDep,
    conversation: uuid.UUID | None = None,
) -> Response:
    """Questions in a conversation (a new one until the first is asked), answers streamed by the script."""
    tenant = await authorize(request, Scope.QUERY)
    mine, _ = await conversations.page(tenant, None, LIST_LIMIT)
    current = await conversations.read(tenant, conversation) if conversation is not None else None
    return render(
        request,
        "ask.html",
        principal,
        conversations=mine,
        current=current,
        knowledge_bases=await knowledge_bases.visible(tenant),
    )


@router.get("/passages/{chunk_id}")
async def passage(request: Request, chunk_id: uuid.UUID, principal: ConsoleUser, ingestion: IngestionDep) -> Response:
    """A cited passage in full (the dialog a citation opens)."""
    tenant = await authorize(request, Scope.QUERY)
    hit = await ingestion.passage(tenant, chunk_id)
    return render(request, "passage.html", principal, hit=hit)


@router.get("/knowledge-bases")
async def knowledge_bases_page(request: Request, principal: ConsoleUser, service: KnowledgeBasesDep) -> Response:
    tenant = await authorize(request, Scope.QUERY)
    return render(request, "knowledge_bases.html", principal, knowledge_bases=await service.visible(tenant))


@router.get("/upload")
async def upload(
    request: Request,
    principal: ConsoleUser,
    ingestion: IngestionDep,
    knowledge_bases: KnowledgeBasesDep,
    settings: SettingsDep,
) -> Response:
    """Files or a folder into a knowledge base; the script sends them and follows each job's events."""
    tenant = await authorize(request, Scope.INGEST)
    recent, _ = await ingestion.jobs(tenant, None, None, 10)
    return render(
        request,
        "upload.html",
        principal,
        knowledge_bases=await knowledge_bases.visible(tenant),
        jobs=recent,
        max_files=settings.max_files_per_request,
        max_bytes=settings.max_upload_bytes,
    )


@router.get("/documents")
async def documents(
    request: Request,
    principal: ConsoleUser,
    ingestion: IngestionDep,
    knowledge_bases: KnowledgeBasesDep,
    db: DatabaseDep,
    knowledge_base: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The documents, searched by title or source; htmx asks for the table alone as the search is typed.
    Admins select some and set who may read them (`console.access`)."""
    tenant = await authorize(request, Scope.QUERY)
    visible = await knowledge_bases.visible(tenant)
    kb_ids = await knowledge_bases.ids(tenant, (knowledge_base,)) if knowledge_base else None
    search = inputs.check(search, "search") or None
    page, next_cursor = await ingestion.documents(tenant, kb_ids, cursor, PAGE_SIZE, search)
    names = {kb.id: kb.name for kb in visible}
    table_only = bool(request.headers.get("hx-request"))
    template = "documents_table.html" if table_only else "documents.html"
    return render(
        request,
        template,
        principal,
        documents=page,
        next_cursor=next_cursor,
        knowledge_bases=visible,
        kb_names=names,
        knowledge_base=knowledge_base or "",
        search=search or "",
        readers=None if table_only else await _bulk_readers(db, tenant),
    )


async def _bulk_readers(db: Database, tenant: TenantContext) -> Readers | None:
    """What the bulk access editor offers an admin: active users, groups, unrevoked keys."""
    readers = await readers_for(db, tenant)
    return readers.offered(None) if readers is not None else None
