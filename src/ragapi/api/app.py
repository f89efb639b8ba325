"""The FastAPI application: middleware, error mapping, routers, LangServe, start-up and shutdown."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from ragapi.api import console, docs_pages, langserve, mcp_server, openapi, playground, problem_pages, problems, welcome
from ragapi.api.dependencies import authenticate_scope
from ragapi.api.drain import DrainMiddleware, hook_signals
from ragapi.api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    CredentialsFirstMiddleware,
    HttpMetricsMiddleware,
    RateLimitHeadersMiddleware,
    RequestIdMiddleware,
)
from ragapi.api.openai_compat import errors as openai_errors
from ragapi.api.openai_compat import routes as openai_compat
from ragapi.api.routes import (
    analytics,
    api_keys,
    auth,
    conversations,
    documents,
    feedback,
    groups,
    health,
    ingest,
    knowledge_bases,
    query,
    search,
    sso,
    tenants,
    users,
)
from ragapi.api.state import AppState
from ragapi.core import sentry, tracing
from ragapi.core.errors import Unauthenticated
from ragapi.core.metrics import exposition
from ragapi.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    sentry.setup(settings)
    tracing.setup("ragapi")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = await AppState.start(settings, serve=True)
        services = app.state.services
        langserve.mount(app, services.answers, services.conversations)  # routes over the services built just now
        unhook = hook_signals(settings.shutdown_timeout_s)
        welcome.announce(settings)
        try:
            async with mcp_server.mounted(app, services):  # /mcp, and the MCP sessions' task group
                # What is alive now (modules, the model, pools) lives as long as the process: keep it out of
                # the collector's full passes, each of which would otherwise scan all of it on the event loop.
                gc.collect()
                gc.freeze()
                log.info("ragapi ready")
                yield
        finally:
            unhook()
            await app.state.services.stop()

    app = FastAPI(
        title="Enterprise RAG API",
        version="0.1.0",
        description="Multi-tenant retrieval-augmented generation with database-enforced tenant isolation.",
        lifespan=lifespan,
        docs_url=None,  # docs_pages serves them with its own assets
        redoc_url=None,
    )
    problems.install(app)
    app.add_middleware(DrainMiddleware)  # innermost: it sees each stream's own writes
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_json_body_bytes,
        upload_bytes=settings.max_upload_bytes,
        uploads=[("POST", "/v1/ingest")],
    )
    app.add_middleware(
        CredentialsFirstMiddleware, authenticate=authenticate_scope, public=auth.PUBLIC_PATHS | playground.PUBLIC_PATHS
    )
    app.add_middleware(playground.PlaygroundCookieMiddleware)  # before it: the cookie is a credential there
    app.add_middleware(RateLimitHeadersMiddleware)
    # Outside everything that may refuse a request, so that every refusal on these paths is in OpenAI's shape.
    app.add_middleware(openai_errors.OpenAIErrorsMiddleware, prefixes=openai_errors.PATHS)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware, public_url=settings.public_url)
    routers = (
        health,
        auth,
        sso,
        tenants,
        users,
        api_keys,
        groups,
        knowledge_bases,
        ingest,
        documents,
        query,
        search,
        conversations,
        feedback,
        analytics,
        openai_compat,
        playground,
        problem_pages,
    )
    for router in (module.router for module in routers):
        app.include_router(router)
    console.install(app)

    openapi.install(app)
    docs_pages.install(app)
    observe(app, settings)
    return app


def observe(app: FastAPI, settings: Settings) -> None:
    """HTTP metrics (per route template, status class), /metrics, and a server span per request."""
    quiet = ["/metrics", "/metrics/", "/healthz", "/readyz"]
    app.add_middleware(HttpMetricsMiddleware, quiet=quiet)

    async def metrics(request: Request) -> Response:
        token = settings.metrics_bearer_token
        if token is not None and request.headers.get("authorization") != f"Bearer {token.get_secret_value()}":
            raise Unauthenticated("/metrics needs the METRICS_BEARER_TOKEN as a bearer token")
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics/", metrics, methods=["GET"], include_in_schema=False)
    if tracing.active():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls=",".join(quiet))
