"""POST /v1/chat/completions, GET /v1/models and GET /v1/models/{model}: the answering service behind
OpenAI's chat API (see the package's docstring and docs/openai-compatible.md).

A request goes the way every question goes: the credential (`Authorization: Bearer <API key or access
token>`, as OpenAI's SDKs send it) gives the tenant, the query scope is checked and the rate limits
spent (`QueryTenant`); the messages are read into a question (the last, the user's) and the exchanges
before it; the conversation use case rewrites a follow-up into a standalone question (`follow_up`, as
for LangServe's `chat_history`); the answering service admits it (the knowledge bases the model names,
the quota, the cache) and answers it, logging it like any other query. The answer goes back as one
`chat.completion`, or as `chat.completion.chunk` events ending with `data: [DONE]`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, StreamingResponse

from ragapi.answering.answer import Answer, AnswerEvent, Finished, Sources, Token
from ragapi.answering.conversations.service import FollowUp
from ragapi.answering.question import Question, Surface
from ragapi.answering.service import final
from ragapi.api import chat_history
from ragapi.api.dependencies import QueryTenant
from ragapi.api.openai_compat.errors import error_body
from ragapi.api.openai_compat.models import described, listed, refs_of, unknown
from ragapi.api.openai_compat.schemas import (
    MODEL_CHARS,
    AnswerDetails,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    CompletionUsage,
    ModelCard,
    ModelList,
)
from ragapi.api.routes.query import STREAM_HEADERS
from ragapi.api.services import AnswerServiceDep, ConversationsDep, KnowledgeBasesDep
from ragapi.core.errors import InvalidInput, NotFound, RagApiError
from ragapi.core.settings import Settings
from ragapi.generation.condense import Turn as Exchange

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_CITED = re.compile(r"\[(\d{1,3})\]")


@router.get("/models", response_model=ModelList, summary="The knowledge bases this credential may ask, as models")
async def list_models(knowledge_bases: KnowledgeBasesDep, tenant: QueryTenant) -> ModelList:
    return await listed(knowledge_bases, tenant)


@router.get("/models/{model:path}", response_model=ModelCard, summary="One model: a knowledge base, by name or id")
async def get_model(
    model: Annotated[str, Path(max_length=MODEL_CHARS)], knowledge_bases: KnowledgeBasesDep, tenant: QueryTenant
) -> ModelCard:
    return await described(knowledge_bases, tenant, model)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Answer the last user message from the model's knowledge bases, with citations (OpenAI's chat API)",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    body: ChatCompletionRequest, answers: AnswerServiceDep, conversations: ConversationsDep, tenant: QueryTenant
) -> Any:
    question, history = read_messages(body, answers.settings)
    follow_up = await conversations.follow_up(tenant, Surface.OPENAI, question, history)
    try:
        admission = await answers.admit(follow_up.request)
    except NotFound as exc:
        raise unknown(body.model) from exc
    events = answers.answer(admission)
    if not body.stream:
        answer = await final(events)
        return JSONResponse(completion(answer, body, follow_up).model_dump(mode="json"))
    first = await anext(events)  # retrieval errors still become a plain error response
    return StreamingResponse(
        chunks(first, events, body, follow_up), media_type="text/event-stream", headers=STREAM_HEADERS
    )


def read_messages(body: ChatCompletionRequest, settings: Settings) -> tuple[Question, list[Exchange]]:
    """The question (the last message, which must be the user's) and the exchanges before it; every
    message must be well-formed, text only."""
    *earlier, last = [m.model_dump(include={"role", "content"}) for m in body.messages]
    where = f"messages.{len(earlier)}"
    role, text = chat_history.message(last, where)
    if role not in chat_history.HUMAN:
        raise InvalidInput(f"{where}: the last message must be the user's question, not '{role}'")
    try:
        refs = refs_of(body.model)
    except InvalidInput as exc:
        raise unknown(body.model) from exc
    question = Question.parse(text, body.top_k, body.filters, body.cache, settings, refs, field=f"{where}.content")
    return question, chat_history.exchanges(earlier, settings, field="messages")


def content(answer: Answer, references: bool) -> str:
    """The answer's text, then (unless `references` is false) the sources its [n] markers cite."""
    return answer.answer + (sources_list(answer) if references else "")


def sources_list(answer: Answer) -> str:
    cited = {int(n) for n in _CITED.findall(answer.answer)}
    lines = [
        f"[{c.n}] {c.title}" + (f", page {c.page}" if c.page is not None else "")
        for c in answer.citations
        if c.n in cited
    ]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


def usage(answer: Answer) -> CompletionUsage:
    spent = answer.usage
    if spent is None:  # a cached answer: it cost nothing this time
        return CompletionUsage(
            prompt_tokens=0, completion_tokens=0, total_tokens=0, embedding_tokens=0, estimated=False
        )
    prompt = spent.prompt_tokens + spent.embedding_tokens
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=spent.completion_tokens,
        total_tokens=prompt + spent.completion_tokens,
        embedding_tokens=spent.embedding_tokens,
        estimated=spent.estimated,
    )


def details(answer: Answer, follow_up: FollowUp) -> AnswerDetails:
    return AnswerDetails(
        query_id=str(answer.query_id),
        mode=answer.mode,
        model=answer.model,
        cached=answer.cached,
        standalone_question=follow_up.standalone.text,
    )


def completion(answer: Answer, body: ChatCompletionRequest, follow_up: FollowUp) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{answer.query_id.hex}",
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=ChatMessage(content=content(answer, body.references)))],
        usage=usage(answer),
        citations=answer.citations,
        ragapi=details(answer, follow_up),
    )


async def chunks(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent], body: ChatCompletionRequest, follow_up: FollowUp
) -> AsyncIterator[str]:
    """The answer as `chat.completion.chunk` events: the role with the citations and our details first,
    the text as it is written, the list of sources, the finish reason, the usage when asked for, then
    `[DONE]`. A failure once the stream has started is an `error` event, as OpenAI sends one."""
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    created, chunk_id = int(time.time()), ""

    def data(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        payload = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": body.model}
        payload.update(system_fingerprint=None, choices=[choice], **more)
        if include_usage:
            payload["usage"] = None  # as OpenAI sends it on every chunk but the last
        return data(payload)

    def opening(query_id: str, citations: list[Any], mode: str, model: str, cached: Any) -> str:
        extension = {"query_id": query_id, "mode": mode, "model": model, "cached": cached}
        extension["standalone_question"] = follow_up.standalone.text
        cited = [c.model_dump(mode="json") for c in citations]
        return chunk({"role": "assistant", "content": ""}, citations=cited, ragapi=extension)

    try:
        if isinstance(first, Sources):
            chunk_id = f"chatcmpl-{first.query_id.hex}"
            yield opening(str(first.query_id), first.citations, first.mode, first.model, False)
        async for event in _after(first, rest):
            if isinstance(event, Token):
                yield chunk({"content": event.text})
            elif isinstance(event, Finished):
                answer = event.answer
                if event is first:  # a cached answer: its opening and its text at once
                    chunk_id = f"chatcmpl-{answer.query_id.hex}"
                    yield opening(str(answer.query_id), answer.citations, answer.mode, answer.model, answer.cached)
                    yield chunk({"content": answer.answer})
                if body.references and sources_list(answer):
                    yield chunk({"content": sources_list(answer)})
                yield chunk({}, "stop")
                if include_usage:
                    yield data(
                        {
                            "id": chunk_id,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": body.model,
                            "system_fingerprint": None,
                            "choices": [],
                            "usage": usage(answer).model_dump(mode="json"),
                        }
                    )
    except RagApiError as exc:
        yield data(error_body(exc.status, exc.title, exc.detail)[1])
        return
    except Exception:
        log.exception("chat completion stream failed")
        yield data(error_body(500, "Internal error", "an unexpected error occurred")[1])
        return
    yield "data: [DONE]\n\n"


async def _after(first: AnswerEvent, rest: AsyncIterator[AnswerEvent]) -> AsyncIterator[AnswerEvent]:
    """The events to send after the opening: a miss's opening is its `Sources`, a hit's its `Finished`."""
    if not isinstance(first, Sources):
        yield first
    async for event in rest:
        yield event
