"""The answering service on LangServe at /v1/rag (invoke, batch, stream, stream_log, stream_events,
schemas, playground), for `RemoteRunnable` clients.

Every endpoint authenticates through a route dependency, the same gate as REST (credential, query scope,
rate limits). For the endpoints that run the chain it then reads the body (authenticated first): every
input must be valid, at most MAX_BATCH_INPUTS, and the request spends one request from the rate limits
and one query from the quota per input, before anything runs (a batch is charged whole or not at all).

The runnable is a thin adapter: each input becomes an `AnswerRequest` (through the conversation use case's
`follow_up`, which rewrites the question from the human turns of the input's `chat_history`, if any:
`ragapi.api.chat_history`), admitted without a further charge, and the service's answer events become
the chunks of its stream. `configurable` carries only the tenant
scope of the request, which `per_req_config_modifier` sets from the verified credential after anything
the client sent, so a RemoteRunnable cannot reach another tenant. (`configurable` stays in config_keys
only because LangServe's batch endpoint drops every other key after the modifier has run.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator
from langchain_core.runnables.utils import AddableDict
from langserve import add_routes
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model

from ragapi.answering.answer import Answer, AnswerEvent, Sources, Token
from ragapi.answering.conversations.service import ConversationService
from ragapi.answering.question import Question, Surface
from ragapi.answering.service import AnswerService
from ragapi.api import chat_history
from ragapi.api.dependencies import enforce_limits, get_state, principal_limits, tenant_for
from ragapi.core.errors import InvalidInput, Unauthenticated
from ragapi.core.settings import Settings
from ragapi.generation.condense import Turn as Exchange
from ragapi.retrieval.knowledge_bases import MAX_REFS
from ragapi.schemas import Body
from ragapi.tenants.context import Scope, TenantContext

TENANT = "tenant"  # the one `configurable` entry: the request's TenantContext
CHAIN_ENDPOINTS = frozenset({"invoke", "batch", "stream", "stream_log", "stream_events"})


NULL = {"type": "null"}


def plain_optionals(schema: dict[str, Any]) -> None:
    """An optional field described as its type alone, without a null default: the playground's form
    renderer (JSON Forms) throws `Unknown type: {"type":"null"}` on `anyOf [..., {"type": "null"}]` and
    shows nothing. Leaving a field out is how a client leaves it unset (null is still accepted)."""
    for field in schema.get("properties", {}).values():
        alternatives = field.get("anyOf", [])
        if NULL not in alternatives:
            continue
        rest = [a for a in alternatives if a != NULL]
        del field["anyOf"]
        if len(rest) == 1:
            field.update(rest[0])
        else:
            field["anyOf"] = rest
        if "default" in field and field["default"] is None:
            del field["default"]


class RagInputBody(Body):
    model_config = ConfigDict(json_schema_extra=plain_optionals)


def rag_input_model(settings: Settings) -> type[BaseModel]:
    return create_model(
        "RagInput",
        __base__=RagInputBody,
        query=(str, Field(min_length=1, max_length=settings.max_query_chars)),
        knowledge_bases=(
            list[str] | None,
            Field(
                default=None,
                max_length=MAX_REFS,
                description="Knowledge bases to search (ids or names); none or an empty list (as the playground's "
                "form sends): the tenant's default",
            ),
        ),
        top_k=(int | None, Field(default=None, ge=1, le=settings.max_top_k)),
        filters=(dict[str, Any] | None, None),
        cache=(bool, Field(default=True, description="false skips the answer cache for this request")),
        chat_history=(
            Annotated[list[Any] | None, WithJsonSchema(chat_history.json_schema(settings))],
            Field(
                default=None,
                description="Earlier turns of a conversation the client keeps: LangChain messages (HumanMessage, "
                "AIMessage, ...) or [role, content] pairs, at most CONVERSATION_MAX_MESSAGES; the question is "
                "rewritten from the human turns before retrieval",
            ),
        ),
    )


class RagAnswer(Answer):
    """The runnable's output: the answer, and with a `chat_history` the question that was searched."""

    standalone_question: str | None = Field(
        default=None, description="With chat_history: the question made standalone from its human turns, as searched"
    )


def questions_of(body: Any, batch: bool, model: type[BaseModel], settings: Settings) -> list[Question]:
    """The request's questions, each valid (the first invalid one is a 422 naming it): what the request
    is charged for, before LangServe's own validation and the chain run."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    if "config" in body:  # LangServe itself fails on anything else (a null, say)
        config = body["config"]
        configs = config if batch and isinstance(config, list) else [config]
        if not all(isinstance(c, dict) for c in configs):
            raise InvalidInput("config must be a JSON object" + (", or a list of one per input" if batch else ""))
    raw = body.get("inputs") if batch else [body.get("input")]
    field = "inputs" if batch else "input"
    if not isinstance(raw, list) or not 1 <= len(raw) <= settings.max_batch_inputs:
        raise InvalidInput(f"inputs must list 1 to {settings.max_batch_inputs} inputs (MAX_BATCH_INPUTS)")
    questions = []
    for n, item in enumerate(raw):
        where = f"{field}.{n}" if batch else field
        try:
            value = model.model_validate(item)
            questions.append(question_of(value, settings))
            history_of(value, settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            inner = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{where}.{inner}: {first['msg']}" if inner else f"{where}: {first['msg']}") from exc
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.{exc.detail}") from exc
    return questions


def _data(value: Any) -> dict[str, Any]:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


def question_of(value: Any, settings: Settings) -> Question:
    data = _data(value)
    return Question.parse(
        data["query"],
        data.get("top_k"),
        data.get("filters"),
        data.get("cache", True),
        settings,
        data.get("knowledge_bases") or None,
    )


def history_of(value: Any, settings: Settings) -> list[Exchange] | None:
    """The earlier exchanges of the input's `chat_history`, oldest first; None when it has none."""
    raw = _data(value).get("chat_history")
    return None if raw is None else chat_history.exchanges(raw, settings)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput("the body is not valid JSON") from exc


def gate(answers: AnswerService, model: type[BaseModel]) -> Callable[[Request], Coroutine[Any, Any, None]]:
    async def authenticate(request: Request) -> None:
        """Route dependency of every LangServe endpoint (see the module's docstring)."""
        state = get_state(request)
        tenant = await tenant_for(request, Scope.QUERY)
        request.state.tenant = tenant
        endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method != "POST" or endpoint not in CHAIN_ENDPOINTS:
            await enforce_limits(request, principal_limits(state, tenant.principal))
            return
        body = await _json(request)  # Starlette keeps it: LangServe reads the same request's body again
        questions = questions_of(body, endpoint == "batch", model, answers.settings)
        await enforce_limits(request, principal_limits(state, tenant.principal, cost=len(questions)))
        await answers.charge(tenant, questions)

    return authenticate


async def scope_to_tenant(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every config of the request (a batch may send one per input) gets the tenant of its credential."""
    return {**config, "configurable": {TENANT: request.state.tenant}}  # set by the gate, which ran first


def runnable(answers: AnswerService, conversations: ConversationService) -> Runnable[Any, Any]:
    """The answering service as one `rag` runnable: each input made standalone from its `chat_history`,
    admitted (its request was charged by the gate) and answered, the events as chunks that add up to the
    `RagAnswer`."""

    async def stream(inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[AddableDict]:
        tenant = (config.get("configurable") or {}).get(TENANT)
        if not isinstance(tenant, TenantContext):
            raise Unauthenticated("the answering runnable runs only for a verified credential")
        settings = answers.settings
        async for value in inputs:
            history = history_of(value, settings)
            follow_up = await conversations.follow_up(
                tenant, Surface.LANGSERVE, question_of(value, settings), history or []
            )
            more = {"standalone_question": follow_up.standalone.text} if history is not None else {}
            first = True
            async for event in answers.answer(await answers.admit(follow_up.request, queries=0)):
                yield chunk(event, first, more)
                first = False

    # RunnableGenerator passes `config` to functions that accept it; its type hints do not say so
    return RunnableGenerator(stream, name="rag")  # type: ignore[arg-type]


def chunk(event: AnswerEvent, first: bool, more: dict[str, Any] | None = None) -> AddableDict:
    """An event as the runnable's chunk: a miss's chunks add up to its answer, a hit is one chunk. `more`
    goes into the first chunk only (chunks add up field by field)."""
    if isinstance(event, Sources):
        citations = [c.model_dump(mode="json") for c in event.citations]
        sources = {"query_id": str(event.query_id), "citations": citations, "mode": event.mode, "model": event.model}
        return AddableDict(**sources, **(more or {}), answer="")
    if isinstance(event, Token):
        return AddableDict(answer=event.text)
    if first:
        return AddableDict({**event.answer.model_dump(mode="json"), **(more or {})})
    return AddableDict(event.answer.model_dump(mode="json", include={"cached", "timings_ms", "usage"}))


def mount(app: FastAPI, answers: AnswerService, conversations: ConversationService) -> None:
    model = rag_input_model(answers.settings)
    chain = runnable(answers, conversations).with_types(input_type=model, output_type=RagAnswer)
    add_routes(
        app,
        chain,
        path="/v1/rag",
        config_keys=("configurable",),
        dependencies=[Depends(gate(answers, model))],
        per_req_config_modifier=scope_to_tenant,
        # LangSmith token feedback: unused here (the name is missing from LangServe's own type hint).
        disabled_endpoints=["token_feedback"],  # type: ignore[list-item]
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
    )
