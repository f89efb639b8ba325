"""The OpenAPI document as the API answers: what FastAPI and LangServe generate, with every error response
an RFC 9457 problem (`application/problem+json`, which `api.problems` sends, instead of FastAPI's JSON
validation error; OpenAI's error object on the OpenAI-compatible routes) and LangServe's streams as
server-sent events."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ragapi.api.openai_compat import errors as openai_errors
from ragapi.api.problems import PROBLEM_JSON

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


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
