"""The RAG chain on LangServe at /v1/rag (invoke, batch, stream, stream_events, playground).

Every endpoint authenticates through a route dependency (the same gate as REST: credential, query
scope, rate limits); for the endpoints that run the chain it then validates every input and admits each
one: a batch of n inputs spends n requests from the rate limits and n queries from the quota (at most
MAX_BATCH_INPUTS inputs), and invalid input is refused before anything is charged.

The chain declares no configurable fields, and `per_req_config_modifier` replaces the whole
`configurable` section with the tenant of the request's own credential after anything the client sent,
so a RemoteRunnable cannot reach another tenant, index or model. (`configurable` stays in config_keys
only because LangServe's batch endpoint drops every other key after the modifier has run.)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, FastAPI, Request
from langchain_core.runnables import Runnable
from langserve import add_routes
from pydantic import BaseModel, Field, ValidationError, create_model

from api.admission import admit_query
from api.dependencies import enforce_limits, get_state, principal_limits, tenant_for
from api.schemas import Body
from chains.filters import validate_filters
from core.errors import InvalidInput
from core.settings import Settings
from tenants.context import Scope


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
        __base__=Body,
        query=(str, Field(min_length=1, max_length=settings.max_query_chars)),
        top_k=(int | None, Field(default=None, ge=1, le=settings.max_top_k)),
        filters=(dict[str, Any] | None, None),
        cache=(bool, Field(default=True, description="false skips the answer cache for this request")),
    )


# The endpoints that run the chain (`/v1/rag/<name>`, also under `/v1/rag/c/<config hash>/`).
CHAIN_ENDPOINTS = frozenset({"invoke", "batch", "stream", "stream_log", "stream_events"})


def inputs_of(body: Any, batch: bool, model: type[BaseModel], max_inputs: int) -> list[BaseModel]:
    """The request's inputs, each valid (the first invalid one is a 422 naming it): what admission charges
    for, before the chain (and LangServe's own validation) runs."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    if "config" in body:  # LangServe itself fails on anything else (a null, say)
        config = body["config"]
        configs = config if batch and isinstance(config, list) else [config]
        if not all(isinstance(c, dict) for c in configs):
            raise InvalidInput("config must be a JSON object" + (", or a list of one per input" if batch else ""))
    raw = body.get("inputs") if batch else [body.get("input")]
    field = "inputs" if batch else "input"
    if not isinstance(raw, list) or not 1 <= len(raw) <= max_inputs:
        raise InvalidInput(f"inputs must list 1 to {max_inputs} inputs (MAX_BATCH_INPUTS)")
    parsed = []
    for n, item in enumerate(raw):
        where = f"{field}.{n}" if batch else field
        try:
            value = model.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            inner = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{where}.{inner}: {first['msg']}" if inner else f"{where}: {first['msg']}") from exc
        try:
            validate_filters(getattr(value, "filters", None))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.filters: {exc.detail}") from exc
        parsed.append(value)
    return parsed


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput("the body is not valid JSON") from exc


def authenticate(model: type[BaseModel]) -> Callable[[Request], Coroutine[Any, Any, None]]:
    async def gate(request: Request) -> None:
        """Route dependency of every LangServe endpoint: credential and query scope; for the endpoints that
        run the chain then the body (authenticated first, so an anonymous body is never read): each input
        valid, and as many requests spent from the rate limits and queries from the quota as there are
        inputs, before anything runs. Other endpoints (schemas, playground) spend one request."""
        state = get_state(request)
        tenant = await tenant_for(request, Scope.QUERY)
        endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method != "POST" or endpoint not in CHAIN_ENDPOINTS:
            await enforce_limits(request, principal_limits(state, tenant.principal))
            return
        body = await _json(request)  # Starlette keeps it: LangServe reads the same request's body again
        inputs = inputs_of(body, endpoint == "batch", model, state.settings.max_batch_inputs)
        await enforce_limits(request, principal_limits(state, tenant.principal, cost=len(inputs)))
        payload = inputs[0].model_dump() if len(inputs) == 1 else None
        request.state.configurable = await admit_query(state, tenant, "langserve", payload, queries=len(inputs))

    return gate


async def scope_to_tenant(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every config of the request (a batch may send one per input) gets the admitted `configurable`."""
    return {**config, "configurable": request.state.configurable}  # set by `authenticate`, which ran first


def mount(app: FastAPI, answer_chain: Runnable[Any, Any], settings: Settings) -> None:
    model = rag_input_model(settings)
    chain = answer_chain.with_types(input_type=model, output_type=RagOutput)
    add_routes(
        app,
        chain,
        path="/v1/rag",
        config_keys=("configurable",),
        dependencies=[Depends(authenticate(model))],
        per_req_config_modifier=scope_to_tenant,
        # LangSmith token feedback: unused here (the name is missing from LangServe's own type hint).
        disabled_endpoints=["token_feedback"],  # type: ignore[list-item]
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
    )
