"""The OpenAPI document as the API answers: what FastAPI and LangServe generate, with every error response
an RFC 9457 problem (`application/problem+json`, which `api.problems` sends, instead of FastAPI's JSON
validation error; OpenAI's error object on the OpenAI-compatible routes) and LangServe's streams as
server-sent events; arranged for a reader: tags in the order of a first visit (ingest, documents, query,
... administration, LangServe's plumbing last), and every request and response body with an example
(`api.examples`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from ragapi.api import examples
from ragapi.api.openai_compat import errors as openai_errors
from ragapi.api.problems import PROBLEM_JSON
from ragapi.schemas import IngestJson

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; a validation error adds `errors`, a failed ingest job `documents`",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}
_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_OPENAI_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
ERRORS = {
    "4XX": "The request was refused: a problem saying why (401, 403, 404, 409, 413, 415, 422, 429)",
    "5XX": "The service or a provider it needs failed: a problem with the request id (500, 502, 503)",
}
STREAMS = ("/stream", "/stream_log", "/stream_events")  # LangServe endpoints that answer with SSE


def describe_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its error responses as problems (OpenAI's errors on its routes) and LangServe's
    streams as event streams."""
    for path, operations in schema.get("paths", {}).items():
        error = _OPENAI_ERROR if path.startswith(openai_errors.PATHS) else _PROBLEM
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = error
            for status, description in ERRORS.items():
                responses.setdefault(status, {"description": description, "content": error})
            if path.endswith(STREAMS) and "200" in responses:
                responses["200"]["content"] = {"text/event-stream": {}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components["OpenAIError"] = openai_errors.ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


# Tags in reading order, each with what it is for. LangServe's own tags are renamed (LANGSERVE_TAGS).
TAGS: list[tuple[str, str]] = [
    ("ingest", "Upload files or JSON documents; a durable job indexes them, with progress as server-sent events"),
    ("documents", "The documents indexed: list, read, change metadata, delete"),
    ("query", "Ask a question; an answer with citations, as JSON or streamed"),
    ("conversations", "Follow-up questions, each made standalone from the earlier ones"),
    ("feedback", "Rate answers; export the ratings as an evaluation set"),
    ("analytics", "Volume, latency per stage, cache, tokens, cost, feedback and poorly answered questions"),
    ("openai-compatible", "Chat completions and models as OpenAI's SDKs speak them: a knowledge base is a model"),
    ("knowledge bases", "Administration: collections of documents, each with its own retrieval settings"),
    ("groups", "Administration: the tenant's groups of users, which document access lists name"),
    ("api keys", "Administration: the tenant's keys, with scopes and knowledge bases; a new key is shown once"),
    ("users", "Administration: the tenant's users and their roles"),
    ("tenants", "Administration: tenants and plans (superadmins), and your own tenant's limits and usage"),
    ("single sign-on", "The tenant's OpenID Connect identity provider, and signing in through it"),
    ("auth", "Sign in with a password for a bearer token; refresh, sign out, change or reset a password"),
    ("health", "Liveness and readiness probes"),
    ("langserve", "The answering runnable for LangServe's RemoteRunnable: invoke, batch, stream, schemas"),
    ("langserve config", "The same endpoints with a configuration from a playground share link (`config_hash`)"),
]
LANGSERVE_TAGS = {"v1/rag": "langserve", "v1/rag/config": "langserve config"}
BODY_MODELS = (IngestJson,)  # bodies a route reads itself, referenced from its openapi_extra


def arrange(schema: dict[str, Any]) -> dict[str, Any]:
    """Tags in reading order (paths too, for renderers that follow them), LangServe's renamed."""
    rank = {name: n for n, (name, _) in enumerate(TAGS)}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation["tags"] = [LANGSERVE_TAGS.get(tag, tag) for tag in operation.get("tags", [])]

    def first_tag(item: tuple[str, dict[str, Any]]) -> int:
        tags = [tag for operation in item[1].values() for tag in operation["tags"]]
        return min((rank.get(tag, len(TAGS)) for tag in tags), default=len(TAGS))

    schema["paths"] = dict(sorted(schema.get("paths", {}).items(), key=first_tag))  # stable: order within a tag kept
    schema["tags"] = [{"name": name, "description": description} for name, description in TAGS]
    return schema


def _example_of(media: dict[str, Any]) -> Any:
    ref = media.get("schema", {}).get("$ref") or media.get("schema", {}).get("items", {}).get("$ref")
    if ref is None:
        return None
    example = examples.COMPONENTS.get(ref.rsplit("/", 1)[-1])
    if example is not None and "items" in media["schema"]:
        return [example]
    return example


def add_examples(schema: dict[str, Any]) -> dict[str, Any]:
    """Every request and response body with an example: the component's (`api.examples.COMPONENTS`), set
    on the component and on each use of it, or, for bodies FastAPI cannot describe, a schema and an
    example (`api.examples.RESPONSES`)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, definitions = models_json_schema(
        [(model, "validation") for model in BODY_MODELS], ref_template="#/components/schemas/{model}"
    )
    components.update(definitions.get("$defs", {}))
    for name, example in examples.COMPONENTS.items():
        if name in components:
            components[name]["examples"] = [example]
    for path, operations in schema.get("paths", {}).items():
        plain = path.replace("/c/{config_hash}", "")  # LangServe's share-link variants answer the same
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [(status, r) for status, r in operation.get("responses", {}).items() if status[0] == "2"]
            for status, body in bodies:
                for media_type, media in body.get("content", {}).items():
                    known = examples.RESPONSES.get((method, plain, status, media_type))
                    if known is not None:
                        media["schema"], media["example"] = known
                    elif (example := _example_of(media)) is not None:
                        media["example"] = example
    return schema


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_examples(arrange(describe_errors(generate())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
