"""What a route works with, besides who asks (`ragapi.api.dependencies`): the domain service it calls, and
the resource its path names, read in the caller's tenant or 404 (another tenant's is as absent as one that
never existed). Each is a dependency, so a route's signature says what it uses.

Async, like every dependency here: FastAPI runs a plain `def` dependency on its thread pool, and under
load the hop back waits for the GIL and a turn of the loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from ragapi.analytics.query_log import QueryLogWriter
from ragapi.answering.conversations.service import ConversationService, ConversationView
from ragapi.answering.service import AnswerService
from ragapi.api.dependencies import BearerDoc, KeyDoc, authorize, get_state
from ragapi.api.readiness import Readiness
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
from ragapi.ingestion.models import Document
from ragapi.ingestion.service import IngestionService, JobView
from ragapi.tenants.context import Scope
from ragapi.tenants.sso import SingleSignOn
from ragapi.tenants.tokens import TokenCodec


async def _answers(request: Request) -> AnswerService:
    return get_state(request).answers


async def _conversations(request: Request) -> ConversationService:
    return get_state(request).conversations


async def _ingestion(request: Request) -> IngestionService:
    return get_state(request).ingestion


async def _knowledge_bases(request: Request) -> KnowledgeBaseService:
    return get_state(request).knowledge_bases


async def _settings(request: Request) -> Settings:
    return get_state(request).settings


async def _database(request: Request) -> Database:
    return get_state(request).db


async def _tokens(request: Request) -> TokenCodec:
    return get_state(request).tokens


async def _sso(request: Request) -> SingleSignOn:
    return get_state(request).sso


async def _query_log(request: Request) -> QueryLogWriter | None:
    return get_state(request).query_log


async def _readiness(request: Request) -> Readiness:
    return get_state(request).readiness


AnswerServiceDep = Annotated[AnswerService, Depends(_answers)]
ConversationsDep = Annotated[ConversationService, Depends(_conversations)]
IngestionDep = Annotated[IngestionService, Depends(_ingestion)]
KnowledgeBasesDep = Annotated[KnowledgeBaseService, Depends(_knowledge_bases)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
TokensDep = Annotated[TokenCodec, Depends(_tokens)]
SsoDep = Annotated[SingleSignOn, Depends(_sso)]
QueryLogDep = Annotated[QueryLogWriter | None, Depends(_query_log)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]


def _document(scope: Scope) -> Callable[..., Coroutine[Any, Any, Document]]:
    async def found(
        document_id: uuid.UUID, request: Request, ingestion: IngestionDep, _key: KeyDoc, _bearer: BearerDoc
    ) -> Document:
        tenant = await authorize(request, scope)
        return await ingestion.document(tenant, document_id)

    return found


def _job(scope: Scope, files: bool) -> Callable[..., Coroutine[Any, Any, JobView]]:
    async def found(
        job_id: uuid.UUID, request: Request, ingestion: IngestionDep, _key: KeyDoc, _bearer: BearerDoc
    ) -> JobView:
        tenant = await authorize(request, scope)
        return await ingestion.job(tenant, job_id, files=files)

    return found


async def _own_conversation(
    conversation_id: uuid.UUID, request: Request, conversations: ConversationsDep, _key: KeyDoc, _bearer: BearerDoc
) -> ConversationView:
    """The caller's own conversation: another key's or user's, in this tenant or another, is a 404."""
    tenant = await authorize(request, Scope.QUERY)
    return await conversations.read(tenant, conversation_id)


ReadableDocument = Annotated[Document, Depends(_document(Scope.QUERY))]
ReadableJob = Annotated[JobView, Depends(_job(Scope.QUERY, files=True))]
FollowedJob = Annotated[JobView, Depends(_job(Scope.QUERY, files=False))]  # its progress, without its files
OwnConversation = Annotated[ConversationView, Depends(_own_conversation)]  # with its messages
