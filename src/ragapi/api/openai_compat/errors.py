"""Errors on the OpenAI-compatible paths in OpenAI's shape, so that its SDKs raise their usual exceptions.

Every error of the API is first an RFC 9457 problem (`ragapi.api.problems`), whoever refused the request:
the credentials-first and body-limit middleware, a dependency, the route, the router itself. On these
paths `OpenAIErrorsMiddleware` rewrites that problem into `{"error": {"message", "type", "param",
"code"}}`, so there is one mapping, here, rather than a second error path through every layer:

    400  invalid_request_error                 bad input (our 422s too: OpenAI's SDKs expect 400)
    401  invalid_request_error / invalid_api_key   AuthenticationError
    403  permission_error                      PermissionDeniedError
    404  invalid_request_error / model_not_found   NotFoundError
    409  invalid_request_error / conflict      ConflictError
    413  invalid_request_error / request_too_large
    429  requests / rate_limit_exceeded, or insufficient_quota / insufficient_quota   RateLimitError
    5xx  server_error                          InternalServerError

It also gives every response on these paths OpenAI's rate-limit headers (`x-ratelimit-limit-requests`,
`x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests`) beside our `RateLimit-*` ones; a 429
keeps its `Retry-After`, which the SDKs honour when they retry.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragapi.core import sentry

log = logging.getLogger(__name__)

PATHS = ("/v1/chat/", "/v1/models")  # the OpenAI-compatible routes
ERROR_SCHEMA: dict[str, Any] = {
    "title": "OpenAIError",
    "type": "object",
    "description": "OpenAI's error shape (docs/openai-compatible.md#errors-and-limits)",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
    "required": ["error"],
}

_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\s*:")
_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "requests"}
_CODES = {401: "invalid_api_key", 404: "model_not_found", 409: "conflict", 413: "request_too_large"}


def error_body(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    """OpenAI's status and error object for one of our problems; a bad request's detail that starts with
    a parameter (`messages.2: ...`, as every input error of ours does) names it as `param`."""
    status = 400 if status == 422 else status
    kind = "server_error" if status >= 500 else _TYPES.get(status, "invalid_request_error")
    code = _CODES.get(status)
    if status == 429:
        quota = title == "Quota exceeded"
        kind = "insufficient_quota" if quota else "requests"
        code = "insufficient_quota" if quota else "rate_limit_exceeded"
    found = _FIELD.match(detail) if status == 400 else None
    param = found.group(1) + found.group(2) if found else None
    return status, {"error": {"message": detail, "type": kind, "param": param, "code": code}}


def rate_limit_headers(headers: dict[str, str]) -> dict[str, str]:
    """OpenAI's names for our RateLimit-* headers (requests; tokens are not limited)."""
    names = {"ratelimit-limit": "x-ratelimit-limit-requests", "ratelimit-remaining": "x-ratelimit-remaining-requests"}
    out = {names[k]: v for k, v in headers.items() if k in names}
    if "ratelimit-reset" in headers:
        out["x-ratelimit-reset-requests"] = f"{headers['ratelimit-reset']}s"
    return out


class OpenAIErrorsMiddleware:
    """On the paths starting with one of `prefixes`: problems rewritten in OpenAI's shape, an unexpected
    error answered as OpenAI's 500 (logged and reported as elsewhere), rate-limit headers under OpenAI's
    names too."""

    def __init__(self, app: ASGIApp, prefixes: Collection[str]) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        started = False
        problem: Message | None = None
        body = b""

        async def rewriting_send(message: Message) -> None:
            nonlocal started, problem, body
            if message["type"] == "http.response.start":
                started = True
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in rate_limit_headers(headers).items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                if headers.get("content-type", "").startswith("application/problem+json"):
                    problem = message  # sent once its body is complete
                    return
            elif message["type"] == "http.response.body" and problem is not None:
                body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                await self._send_problem(problem, body, send)
                return
            await send(message)

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception as exc:
            if started:
                raise
            log.error("unhandled error", exc_info=exc, extra={"path": scope["path"]})
            sentry.capture(exc)
            status, error = error_body(500, "Internal error", "an unexpected error occurred")
            await _send_json(send, status, error, [(b"connection", b"close")])

    async def _send_problem(self, start: Message, body: bytes, send: Send) -> None:
        try:
            found = json.loads(body)
            status, error = error_body(found["status"], found["title"], found["detail"])
        except (ValueError, KeyError, TypeError):
            status, error = error_body(start["status"], "", "the request failed")
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
        await _send_json(send, status, error, kept)


async def _send_json(send: Send, status: int, error: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(error, ensure_ascii=True).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": payload})
