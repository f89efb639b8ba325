"""POST /v1/query: one cited answer as JSON, or as an SSE stream (`sources`, `token`..., `done` | `error`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.utils import AddableDict
from sse_starlette.sse import EventSourceResponse

from api.admission import admit_query
from api.dependencies import QueryTenant, State
from api.problems import problem
from api.schemas import QueryRequest, QueryResponse
from core.errors import InvalidInput, RagApiError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["query"])

STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def wants_stream(request: Request, body: QueryRequest) -> bool:
    return body.stream or "text/event-stream" in request.headers.get("accept", "")


def _event(name: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": name, "data": json.dumps(data, ensure_ascii=False)}


async def sse_events(first: dict[str, Any], rest: AsyncIterator[Any]) -> AsyncIterator[dict[str, str]]:
    """Map the chain's partial responses onto SSE events; a failure mid-stream becomes an `error` event."""
    merged = dict(first)
    yield _event("sources", {k: first[k] for k in ("query_id", "citations", "mode", "model")})
    if first.get("answer"):  # a cache hit is one chunk: its sources and the whole answer
        yield _event("token", {"text": first["answer"]})
    try:
        async for chunk in rest:
            if "answer" in chunk and chunk["answer"]:
                merged["answer"] = merged.get("answer", "") + chunk["answer"]
                yield _event("token", {"text": chunk["answer"]})
            merged.update({k: v for k, v in chunk.items() if k != "answer"})
        yield _event("done", QueryResponse.model_validate(merged).model_dump(mode="json"))
    except RagApiError as exc:
        yield _event("error", problem(exc.status, exc.title, exc.detail))
    except Exception:
        log.exception("query stream failed")
        yield _event("error", problem(500, "Internal error", "an unexpected error occurred"))


@router.post(
    "/query",
    response_model=QueryResponse,
    summary="Answer a question from the tenant's documents, with citations",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def query(request: Request, body: QueryRequest, state: State, tenant: QueryTenant) -> Any:
    settings = state.settings
    if len(body.query) > settings.max_query_chars:
        raise InvalidInput(f"query is longer than {settings.max_query_chars} characters (MAX_QUERY_CHARS)")
    if body.top_k is not None and body.top_k > settings.max_top_k:
        raise InvalidInput(f"top_k must be at most {settings.max_top_k} (MAX_TOP_K)")
    payload = body.model_dump(exclude={"stream"})
    streaming = wants_stream(request, body)
    config = RunnableConfig(configurable=await admit_query(state, tenant, "sse" if streaming else "rest", payload))
    stream = state.answer_stream(payload, config)  # the chain's stream without a runnable around it
    if not streaming:
        result = AddableDict()
        async for chunk in stream:
            result = result + chunk
        return JSONResponse(QueryResponse.model_validate(result).model_dump(mode="json"))
    first = await anext(stream)  # retrieval errors still become a plain problem response
    return EventSourceResponse(sse_events(first, stream), headers=STREAM_HEADERS, ping=15)
