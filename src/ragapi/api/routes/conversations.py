"""/v1/conversations: the caller's own multi-turn conversations (make, list, read with the messages and their
citations, delete) and questions asked in one: answered as POST /v1/query answers (JSON, or SSE `sources`,
`token`..., `done` | `error`), with the standalone question that was searched. A conversation belongs to
the key or user that made it: anyone else's, in this tenant or another, is a 404. Read back, it shows
only what its owner may read now (`answering.conversations.redaction`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from ragapi.answering.conversations.models import Conversation, ConversationMessage
from ragapi.answering.question import Question, Surface
from ragapi.answering.service import final
from ragapi.api.dependencies import QueryTenant
from ragapi.api.routes.query import STREAM_HEADERS, sse_events, wants_stream
from ragapi.api.services import ConversationsDep, OwnConversation, SettingsDep
from ragapi.schemas import (
    ConversationAnswer,
    ConversationCreate,
    ConversationDetail,
    ConversationMessageIn,
    ConversationOut,
    ConversationPage,
    MessageOut,
)

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def _out(c: Conversation) -> ConversationOut:
    return ConversationOut(
        id=c.id,
        title=c.title,
        knowledge_bases=c.knowledge_bases,
        message_count=c.message_count,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _message(m: ConversationMessage, withheld: frozenset[int]) -> MessageOut:
    return MessageOut.model_validate(m, from_attributes=True).model_copy(update={"withheld": m.ord in withheld})


@router.post("", response_model=ConversationOut, status_code=201, summary="Start a conversation")
async def create_conversation(
    body: ConversationCreate, conversations: ConversationsDep, tenant: QueryTenant
) -> ConversationOut:
    return _out(await conversations.create(tenant, body.title, body.knowledge_bases))


@router.get("", response_model=ConversationPage, summary="Your conversations, newest first")
async def list_conversations(
    conversations: ConversationsDep,
    tenant: QueryTenant,
    limit: Annotated[int, Query(ge=1, description="Page size, at most PAGE_SIZE_MAX")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ConversationPage:
    page, next_cursor = await conversations.page(tenant, cursor, limit)
    return ConversationPage(items=[_out(c) for c in page], next_cursor=next_cursor)


@router.get("/{conversation_id}", response_model=ConversationDetail, summary="A conversation with its messages")
async def get_conversation(found: OwnConversation) -> ConversationDetail:
    messages = [_message(m, found.withheld) for m in found.messages]
    return ConversationDetail(**_out(found.conversation).model_dump(), messages=messages)


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation and its messages")
async def delete_conversation(
    conversation_id: uuid.UUID, conversations: ConversationsDep, tenant: QueryTenant
) -> Response:
    await conversations.delete(tenant, conversation_id)
    return Response(status_code=204)


@router.post(
    "/{conversation_id}/messages",
    response_model=ConversationAnswer,
    summary="Ask a question in a conversation: answered from the question made standalone by the earlier ones",
    responses={
        200: {"content": {"text/event-stream": {}}},
        409: {"description": "The conversation is full (CONVERSATION_MAX_MESSAGES): start a new one"},
    },
)
async def ask_in_conversation(
    request: Request,
    conversation_id: uuid.UUID,
    body: ConversationMessageIn,
    conversations: ConversationsDep,
    settings: SettingsDep,
    tenant: QueryTenant,
) -> Any:
    streaming = wants_stream(request, body.stream)
    question = Question.parse(body.content, body.top_k, body.filters, body.cache, settings, field="content")
    turn = await conversations.ask(tenant, conversation_id, question, Surface.SSE if streaming else Surface.REST)
    more = {"conversation_id": str(conversation_id), "standalone_question": turn.standalone.text}
    if not streaming:
        answer = await final(turn.events)
        return JSONResponse(ConversationAnswer(**answer.model_dump(), **more).model_dump(mode="json"))
    first = await anext(turn.events)  # retrieval errors still become a plain problem response
    return EventSourceResponse(sse_events(first, turn.events, more), headers=STREAM_HEADERS, ping=15)
