"""The RAG chain on LangServe at /v1/rag (invoke, batch, stream, stream_events, playground).

Every endpoint authenticates through a route dependency (the same gate as REST: credential, query
scope, rate limits); the endpoints that run the chain then charge the tenant's query quota.

The chain declares no configurable fields, and `per_req_config_modifier` replaces the whole
`configurable` section with the tenant of the request's own credential after anything the client sent,
so a RemoteRunnable cannot reach another tenant, index or model. (`configurable` stays in config_keys
only because LangServe's batch endpoint drops every other key after the modifier has run.)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from langchain_core.runnables import Runnable
from langserve import add_routes
from pydantic import BaseModel, Field, create_model

from api.admission import admit_query
from api.dependencies import authorize, get_state
from core.settings import Settings
from tenants.context import Scope, TenantContext


class RagOutput(BaseModel):
    query_id: str
    answer: str
    mode: str
    model: str
    citations: list[dict[str, Any]]
    cached: bool | str
    timings_ms: dict[str, float]
    usage: dict[str, Any] | None = None


def rag_input_model(settings: Settings) -> type[BaseModel]:
    return create_model(
        "RagInput",
        query=(str, Field(min_length=1, max_length=settings.max_query_chars)),
        top_k=(int | None, Field(default=None, ge=1, le=settings.max_top_k)),
        filters=(dict[str, Any] | None, None),
        cache=(bool, Field(default=True, description="false skips the answer cache for this request")),
    )


async def authenticate(request: Request) -> None:
    """Route dependency: every LangServe endpoint (schemas and playground too) needs the query scope."""
    request.state.tenant = await authorize(request, Scope.QUERY)


async def scope_to_tenant(config: dict[str, Any], request: Request) -> dict[str, Any]:
    tenant: TenantContext = request.state.tenant  # set by `authenticate`, which ran first
    return {**config, "configurable": await admit_query(get_state(request), tenant, "langserve")}


def mount(app: FastAPI, answer_chain: Runnable[Any, Any], settings: Settings) -> None:
    chain = answer_chain.with_types(input_type=rag_input_model(settings), output_type=RagOutput)
    add_routes(
        app,
        chain,
        path="/v1/rag",
        config_keys=("configurable",),
        dependencies=[Depends(authenticate)],
        per_req_config_modifier=scope_to_tenant,
        # LangSmith token feedback: unused here (the name is missing from LangServe's own type hint).
        disabled_endpoints=["token_feedback"],  # type: ignore[list-item]
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
    )
