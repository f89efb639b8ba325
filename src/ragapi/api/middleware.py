"""Pure ASGI middleware (no BaseHTTPMiddleware, so context variables survive): request ids, access log,
credentials before bodies, body limits, rate-limit headers, requests in flight."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragapi.api import problems
from ragapi.core import request_context
from ragapi.core.errors import RagApiError
from ragapi.core.metrics import HTTP_IN_FLIGHT, HTTP_REQUEST_BYTES, HTTP_REQUESTS, HTTP_RESPONSE_BYTES, HTTP_SECONDS
from ragapi.core.request_context import current_request_id

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class HttpMetricsMiddleware:
    """Requests in flight (SSE streams included), and per route template (bounded labels): count by status
    class, duration, request and response sizes. The template is the route Starlette matched, read from
    the scope after the call: no second match against the route table per request.

    Every response also carries a `Server-Timing` header (W3C Server Timing): `app;dur=<ms>`, the time
    from the request reaching the app to its response starting (for a stream: to its headers), after an
    entry per step done by then (`auth`, `limits`, `admission`, the RAG stages), so a client can tell the
    service's time from the network's and its own, and see where the service spent it."""

    def __init__(self, app: ASGIApp, quiet: Collection[str] = ()) -> None:
        self.app = app
        self.quiet = frozenset(quiet)  # probes and /metrics: in flight, but not counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, sent = 500, 0
        timings: list[str] = []
        token = request_context.server_timing.set(timings)

        async def send_and_count(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                timings.append(f"app;dur={(time.perf_counter() - started) * 1000:.1f}")
                header = (b"server-timing", ", ".join(timings).encode())
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        with HTTP_IN_FLIGHT.track_inprogress():
            try:
                await self.app(scope, receive, send_and_count)
            finally:
                request_context.server_timing.reset(token)
                route = scope.get("route")
                handler = getattr(route, "path", None) or "none"  # "none": no route matched (404)
                if handler not in self.quiet:
                    method = scope["method"]
                    HTTP_REQUESTS.labels(handler, method, f"{status // 100}xx").inc()
                    HTTP_SECONDS.labels(handler, method).observe(time.perf_counter() - started)
                    length = dict(scope["headers"]).get(b"content-length", b"0")
                    HTTP_REQUEST_BYTES.labels(handler).observe(int(length) if length.isdigit() else 0)
                    HTTP_RESPONSE_BYTES.labels(handler).observe(sent)


class RequestIdMiddleware:
    """Accept a sane incoming X-Request-ID or mint one; echo it on every response."""

    def __init__(self, app: ASGIApp, public_url: str | None = None) -> None:
        self.app = app
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_context.request_id.set(request_id)
        # for the type of any problem this request answers: the configured address, else the request's own
        problems.origin.set(self.public_url or problems.origin_of(scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        # Not reset when the request fails: the 500 handler and error reporting run outside this
        # middleware (Starlette's ServerErrorMiddleware) and still need the id.
        await self.app(scope, receive, send_with_id)
        request_context.request_id.reset(token)


access_log = logging.getLogger("ragapi.access")


class AccessLogMiddleware:
    """One structured line per request: method, path, status, duration, tenant and principal.

    The query string is left out (it may carry tokens someone put there); the formatter adds the
    request id and redacts anything secret-shaped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "tenant_id": state.get("tenant_id"),
                    "principal": state.get("principal"),
                },
            )


class RateLimitHeadersMiddleware:
    """Copy the request's rate-limit decision (set by the auth dependencies) onto the response headers.

    Routes return their own Response objects (JSON, SSE), so the headers are added at the ASGI level.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_limits(message: Message) -> None:
            decision = state.get("ratelimit")
            if message["type"] == "http.response.start" and decision is not None:
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_limits)


class BodyLimitMiddleware:
    """Refuse bodies over their limit with 413 before they are buffered: `upload_bytes` for the routes in
    `uploads` (method, path), `max_bytes` for every other request.

    A declared Content-Length over the limit is refused before reading a byte; a chunked body is
    counted as it streams and the read fails with 413 as soon as it passes the limit.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, upload_bytes: int, uploads: Collection[tuple[str, str]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.uploads = frozenset(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = (scope["method"], scope["path"].rstrip("/")) in self.uploads
        limit = self.upload_bytes if upload else self.max_bytes
        setting = "MAX_UPLOAD_BYTES" if upload else "MAX_JSON_BODY_BYTES"
        detail = f"request body exceeds the limit of {limit} bytes ({setting})"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await refuse(scope, send, 413, "Payload too large", detail)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counting_receive, send)


class CredentialsFirstMiddleware:
    """A request with a body to a route that needs a credential is authenticated before a byte of its
    body is read: without a valid credential it is refused (401, and the connection closed) at the cost
    of its headers, however large the body it announces. The principal is kept for the route's own
    dependencies (`api.dependencies.principal_for_request`), which therefore do not authenticate twice.

    `public` are the paths that take a body without a credential (sign-in and the like); they are limited
    per client address instead, and their bodies by MAX_JSON_BODY_BYTES."""

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[Scope], Awaitable[object]],
        public: Collection[str],
        prefix: str = "/v1/",
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.public = frozenset(public)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._gated(scope):
            try:
                await self.authenticate(scope)
            except RagApiError as exc:
                headers = {**exc.headers, "WWW-Authenticate": 'Bearer realm="ragapi"'} if exc.status == 401 else {}
                await refuse(scope, send, exc.status, exc.title, exc.detail, {**exc.headers, **headers})
                return
        await self.app(scope, receive, send)

    def _gated(self, scope: Scope) -> bool:
        path = scope["path"]
        if not path.startswith(self.prefix) or path.rstrip("/") in self.public:
            return False
        headers = dict(scope["headers"])
        return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


async def refuse(
    scope: Scope, send: Send, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> None:
    """A problem response sent before the request's body was read; the connection is closed after it,
    since the unread body would otherwise be taken for the next request."""
    body = json.dumps(
        {
            "type": problems.type_uri(title),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
            "request_id": current_request_id(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
