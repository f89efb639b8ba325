"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ragapi.core import sentry
from ragapi.core.errors import RagApiError
from ragapi.core.request_context import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEMS_PATH = "/problems/"  # each type's page, served by the app (api.problem_pages)
# This server's own origin for the request being served (set by RequestIdMiddleware): a problem's `type`
# is a page of the server that answered; outside a request it is the path alone.
origin: ContextVar[str] = ContextVar("origin", default="")


def slug(title: str) -> str:
    return title.lower().replace(" ", "-")


def type_uri(title: str) -> str:
    return origin.get() + PROBLEMS_PATH + slug(title)


def origin_of(scope: Scope) -> str:
    host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}" if host else ""


def problem(status: int, title: str, detail: str, request: Request | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_uri(title),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body["request_id"] = current_request_id()
    body.update(extra)
    return body


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        # ASCII with escapes: a problem may quote what the client sent, which need not be encodable
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return ProblemResponse(body, status_code=body["status"], headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagApiError)  # noqa: S101 - registered for this type only
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ragapi"'
    extra: dict[str, Any] = {}
    if exc.field:  # as a validation error names its field, so a form shows both kinds in the same place
        extra["errors"] = [{"loc": exc.field.split("."), "msg": exc.detail, "type": slug(exc.title)}]
    return problem_response(problem(exc.status, exc.title, exc.detail, request, **extra), headers or None)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(problem(exc.status_code, title, detail, request), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    detail = f"{where}: {first['msg']}" if where else str(first["msg"])
    return problem_response(problem(422, "Invalid input", detail, request, errors=errors))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    sentry.capture(exc)
    body = problem(500, "Internal error", "an unexpected error occurred", request)
    # The server closes the connection after an unhandled error: say so, so that clients do not reuse it.
    headers = {"Connection": "close"}
    if current_request_id():
        headers["X-Request-ID"] = current_request_id()
    return problem_response(body, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RagApiError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
