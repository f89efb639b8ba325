"""The Model Context Protocol server at /mcp (Streamable HTTP), for agents that discover tools over MCP.

Tools, each answered through the service the REST route of the same purpose uses, for the tenant of the
request's credential and within what that credential may use (its knowledge bases, and whatever those
services check):

    list_knowledge_bases()                          GET /v1/knowledge-bases    KnowledgeBaseService.visible
    search(query, knowledge_bases?, top_k?, filters?)   POST /v1/search (logged)   AnswerService.search
    ask(question, knowledge_bases?, top_k?, filters?)   a cited answer, as POST /v1/query    AnswerService
    get_document(document_id)       GET /v1/documents/{id} and its text   IngestionService.document_text

Every HTTP request to /mcp is authenticated as a REST request is (`Authorization: Bearer <API key or
access token>`, or `X-API-Key`), needs the query scope and spends from the rate limits, before the MCP
SDK reads a byte of it: no credential is a 401 and the client never reaches a tool. The transport is
stateless (a fresh MCP session per request, JSON responses), so any replica serves any request and each
tool call carries its own credential. A tool's bad arguments, or a request the services refuse, come back
as a tool error (`isError`), never as a failed HTTP request.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Request
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ragapi.answering.answer import Answer, Passage
from ragapi.answering.question import AnswerRequest, Question, Surface
from ragapi.api.dependencies import authorize
from ragapi.api.problems import problem, problem_response
from ragapi.api.state import AppState
from ragapi.core import access
from ragapi.core.errors import RagApiError, Unauthenticated
from ragapi.retrieval.knowledge_bases import MAX_REFS
from ragapi.tenants.context import Scope as KeyScope
from ragapi.tenants.context import TenantContext

log = logging.getLogger(__name__)

PATH = "/mcp"
_TENANT = "mcp_tenant"  # request state: the tenant the request's credential was verified for
T = TypeVar("T")

KnowledgeBases = Annotated[
    list[str] | None,
    Field(
        default=None,
        max_length=MAX_REFS,
        description="Knowledge bases to search (ids or names, as list_knowledge_bases gives them); none: the default",
    ),
]
TopK = Annotated[int | None, Field(default=None, ge=1, description="How many sources; at most MAX_TOP_K")]
Filters = Annotated[
    dict[str, Any] | None, Field(default=None, description='Metadata filters, e.g. {"lang": ["en", "de"]}')
]


class KnowledgeBaseInfo(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    default: bool = Field(description="Searched when a tool names no knowledge base")
    chunks: int


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseInfo]


class SearchResult(BaseModel):
    query_id: uuid.UUID = Field(description="The search's entry in the query log (for feedback on its passages)")
    passages: list[Passage] = Field(description="The best first; cite them by their n")


class DocumentInfo(BaseModel):
    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    title: str
    source: str | None
    content_type: str
    metadata: dict[str, Any]
    chunks: int
    size_bytes: int
    created_at: datetime | None
    text: str = Field(description="Its chunks' text in order, a blank line between; at most MCP_DOCUMENT_MAX_CHARS")
    truncated: bool = Field(description="The text was cut at MCP_DOCUMENT_MAX_CHARS characters")


class RagTools:
    """The tools, over the application's services; the tenant of each call is its request's."""

    def __init__(self, services: AppState) -> None:
        self.services = services

    async def list_knowledge_bases(self, ctx: Context) -> KnowledgeBaseList:  # type: ignore[type-arg]
        """The knowledge bases this credential may search."""

        async def run(tenant: TenantContext) -> KnowledgeBaseList:
            found = await self.services.knowledge_bases.visible(tenant)
            return KnowledgeBaseList(
                knowledge_bases=[
                    KnowledgeBaseInfo(
                        id=kb.id, name=kb.name, description=kb.description, default=kb.is_default, chunks=kb.chunk_count
                    )
                    for kb in found
                    if kb.status == "active"
                ]
            )

        return await _tool(ctx, run)

    async def search(
        self,
        query: str,
        ctx: Context,  # type: ignore[type-arg]
        knowledge_bases: KnowledgeBases = None,
        top_k: TopK = None,
        filters: Filters = None,
    ) -> SearchResult:
        """Search the knowledge bases: the passages that best match the query, each with its citation
        (document, title, page, score) and its whole text, and the query_id it is logged under. Charged as
        one query."""

        async def run(tenant: TenantContext) -> SearchResult:
            asked = Question.parse(query, top_k, filters, False, self.services.settings, knowledge_bases)
            found = await self.services.answers.search(AnswerRequest(tenant, Surface.MCP, asked))
            return SearchResult(query_id=found.query_id, passages=found.passages)

        return await _tool(ctx, run)

    async def ask(
        self,
        question: str,
        ctx: Context,  # type: ignore[type-arg]
        knowledge_bases: KnowledgeBases = None,
        top_k: TopK = None,
        filters: Filters = None,
    ) -> Answer:
        """Ask a question: an answer written from the knowledge bases, with [n] markers citing its sources
        (listed in citations), and the query_id to give feedback with. Charged as one query."""

        async def run(tenant: TenantContext) -> Answer:
            settings = self.services.settings
            asked = Question.parse(question, top_k, filters, True, settings, knowledge_bases, field="question")
            return await self.services.answers.ask(AnswerRequest(tenant, Surface.MCP, asked))

        return await _tool(ctx, run)

    async def get_document(self, document_id: uuid.UUID, ctx: Context) -> DocumentInfo:  # type: ignore[type-arg]
        """A document a passage or citation came from, by its document_id: title, source, metadata, size,
        and its text (cut at a limit, saying so in truncated)."""

        async def run(tenant: TenantContext) -> DocumentInfo:
            d, text, truncated = await self.services.ingestion.document_text(tenant, document_id)
            return DocumentInfo(
                document_id=d.id,
                knowledge_base_id=d.knowledge_base_id,
                title=d.title,
                source=d.source,
                content_type=d.content_type,
                metadata=d.metadata_,
                chunks=d.chunk_count,
                size_bytes=d.size_bytes,
                created_at=d.created_at,
                text=text,
                truncated=truncated,
            )

        return await _tool(ctx, run)


async def _tool(ctx: Context, run: Callable[[TenantContext], Awaitable[T]]) -> T:  # type: ignore[type-arg]
    """Run a tool for the request's tenant; what the services refuse is a tool error saying why, anything
    else a tool error that says nothing more (and is logged)."""
    request = ctx.request_context.request
    tenant = getattr(request.state, _TENANT, None) if isinstance(request, Request) else None
    try:
        if not isinstance(tenant, TenantContext):
            raise Unauthenticated("the tools run only for a verified credential")
        # The SDK runs a tool in a task of its own: the view `authorize` set for the request is set again
        # here rather than trusted to be copied along, so every read is the caller's (row-level security).
        with access.reading_as(tenant.view):
            return await run(tenant)
    except RagApiError as exc:
        raise ToolError(f"{exc.title}: {exc.detail}") from exc
    except Exception as exc:
        log.exception("MCP tool failed")
        raise ToolError("an unexpected error occurred") from exc


def build(services: AppState) -> FastMCP:  # type: ignore[type-arg]
    # No DNS-rebinding guard (the SDK's Host and Origin allow-list): every request needs a credential,
    # which a page a browser was lured to does not have, and the service's host names are the operator's.
    server: FastMCP = FastMCP(  # type: ignore[type-arg]
        "ragapi",
        instructions="Search and ask this organisation's knowledge bases; answers cite their sources as [n].",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    tools = RagTools(services)
    for tool in (tools.list_knowledge_bases, tools.search, tools.ask, tools.get_document):
        server.add_tool(tool, structured_output=True, annotations=ToolAnnotations(readOnlyHint=True))
    return server


class McpEndpoint:
    """/mcp: the request authenticated, scope-checked and rate-limited like any tenant route, then handed to
    the SDK's session manager with its tenant in the request state."""

    def __init__(self, sessions: StreamableHTTPSessionManager) -> None:
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            tenant = await authorize(request, KeyScope.QUERY)
        except RagApiError as exc:
            headers = dict(exc.headers)
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="ragapi"'
            await problem_response(problem(exc.status, exc.title, exc.detail, request), headers)(scope, receive, send)
            return
        setattr(request.state, _TENANT, tenant)
        await self.sessions.handle_request(scope, receive, send)


@asynccontextmanager
async def mounted(app: FastAPI, services: AppState) -> AsyncIterator[None]:
    """Serve /mcp while inside: the SDK's session manager runs its task group in a task of its own, so
    that whoever enters and leaves the application's lifespan (uvicorn, a test) may do so from
    different tasks."""
    server = build(services)
    server.streamable_http_app()  # makes the session manager, with the settings above
    sessions = server.session_manager
    app.router.routes.append(Route(PATH, McpEndpoint(sessions), include_in_schema=False))  # any method: the SDK's
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with sessions.run():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold(), name="mcp-sessions")
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():  # it could not start: say why
        waiting.cancel()
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task
