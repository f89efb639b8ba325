"""POST /v1/query: one cited answer as JSON, or as an SSE stream (`sources`, `token`..., `done` | `error`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from ragapi.answering.answer import AnswerEvent, Finished, Sources, Token
from ragapi.answering.question import AnswerRequest, Question, Surface
from ragapi.answering.service import final
from ragapi.api.dependencies import QueryTenant
from ragapi.api.problems import problem
from ragapi.api.services import AnswerServiceDep, SettingsDep
from ragapi.core.errors import RagApiError
from ragapi.schemas import QueryRequest, QueryResponse

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["query"])

STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def wants_stream(request: Request, stream: bool) -> bool:
    """SSE when the body asks for it (`stream`) or the client accepts only that."""
    return stream or "text/event-stream" in request.headers.get("accept", "")


def _event(name: str, data: str) -> dict[str, str]:
    return {"event": name, "data": data}


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _dumped(model: BaseModel, more: Mapping[str, Any], include: set[str] | None = None) -> str:
    if not more:
        return model.model_dump_json(include=include)
    return _json({**model.model_dump(mode="json", include=include), **more})


async def sse_events(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent], more: Mapping[str, Any] | None = None
) -> AsyncIterator[dict[str, str]]:
    """The answer's events as SSE: `sources`, `token`..., `done` with the whole answer (a cached answer is
    all three at once); a failure once the stream has started is an `error` event. `more`: fields the
    `sources` and `done` payloads carry besides the answer's (a conversation's standalone question)."""
    more = more or {}
    try:
        async for event in _prepend(first, rest):
            if isinstance(event, Sources):
                sources = {"query_id": str(event.query_id), "mode": event.mode, "model": event.model}
                citations = [c.model_dump(mode="json") for c in event.citations]
                yield _event("sources", _json({**sources, "citations": citations, **more}))
            elif isinstance(event, Token):
                yield _event("token", _json({"text": event.text}))
            elif isinstance(event, Finished):
                answer = event.answer
                if first is event:  # a cached answer: its sources and its text first, as a miss streams them
                    keys = {"query_id", "citations", "mode", "model"}
                    yield _event("sources", _dumped(answer, more, keys))
                    yield _event("token", _json({"text": answer.answer}))
                yield _event("done", _dumped(answer, more))
    except RagApiError as exc:
        yield _event("error", _json(problem(exc.status, exc.title, exc.detail)))
    except Exception:
        log.exception("query stream failed")
        yield _event("error", _json(problem(500, "Internal error", "an unexpected error occurred")))


async def _prepend(first: AnswerEvent, rest: AsyncIterator[AnswerEvent]) -> AsyncIterator[AnswerEvent]:
    yield first
    async for event in rest:
        yield event


@router.post(
    "/query",
    response_model=QueryResponse,
    summary="Answer a question from the tenant's documents, with citations",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def query(
    request: Request, body: QueryRequest, answers: AnswerServiceDep, settings: SettingsDep, tenant: QueryTenant
) -> Any:
    streaming = wants_stream(request, body.stream)
    question = Question.parse(body.query, body.top_k, body.filters, body.cache, settings, body.knowledge_bases)
    asked = AnswerRequest(tenant, Surface.SSE if streaming else Surface.REST, question)
    events = answers.answer(await answers.admit(asked))
    if not streaming:
        return JSONResponse((await final(events)).model_dump(mode="json"))
    first = await anext(events)  # retrieval errors still become a plain problem response
    return EventSourceResponse(sse_events(first, events), headers=STREAM_HEADERS, ping=15)
