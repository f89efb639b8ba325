"""The FastAPI application: middleware, error mapping, routers, LangServe, start-up and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api import langserve_routes, problems
from api.middleware import AccessLogMiddleware, BodyLimitMiddleware, RateLimitHeadersMiddleware, RequestIdMiddleware
from api.routes import analytics, api_keys, auth, documents, feedback, health, ingest, query, tenants, users
from api.state import AppState, answer_runnable
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.rag = await AppState.start(settings, serve=True)
        log.info("ragapi ready")
        try:
            yield
        finally:
            await app.state.rag.stop()

    app = FastAPI(
        title="Enterprise RAG API",
        version="0.1.0",
        description="Multi-tenant retrieval-augmented generation with database-enforced tenant isolation.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    routers = (health, auth, tenants, users, api_keys, ingest, documents, query, feedback, analytics)
    for router in (module.router for module in routers):
        app.include_router(router)

    def resolve() -> AppState:
        state: AppState = app.state.rag
        return state

    langserve_routes.mount(app, answer_runnable(resolve), settings)
    # Prometheus text format; the observability work adds HTTP and stage metrics to the same registry.
    app.mount("/metrics", make_asgi_app())
    return app
