"""What the running service holds: built once at start-up, handed to routes through dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import Runnable

from chains.answer_cache import ExactCache, InProcessCache, RedisCache
from chains.cached_rag import CachedRag, cached_rag_runnable
from chains.embeddings import build_embeddings, embedding_identity
from chains.generate import build_answerer
from chains.index import ensure_dense_index
from chains.rag import RagChain
from chains.rerank import build_reranker
from chains.semantic_cache import SemanticCache
from core.database import Database
from core.migrate import upgrade
from core.settings import Settings
from ingestion.pipeline import IngestPipeline


@dataclass
class AppState:
    settings: Settings
    db: Database
    embeddings: Embeddings
    pipeline: IngestPipeline
    rag: RagChain
    cached: CachedRag
    ready: bool = False

    def answer_chain(self) -> Runnable[Any, Any]:
        """The chain every surface serves: RAG behind the answer cache."""
        return cached_rag_runnable(lambda: self.cached)

    @classmethod
    async def start(cls, settings: Settings, migrate: bool = True) -> AppState:
        db = await asyncio.to_thread(Database.connect, settings)
        if migrate:
            await asyncio.to_thread(upgrade, db.url, settings.db_app_role)
        embeddings = build_embeddings(settings)
        warm_up = getattr(embeddings, "warm_up", None)
        if warm_up is not None:
            await asyncio.to_thread(warm_up)
        _, dim = await asyncio.to_thread(embedding_identity, embeddings)
        async with db.admin_session() as session:
            await ensure_dense_index(session, dim)
        rag = RagChain(
            db=db,
            embeddings=embeddings,
            reranker=build_reranker(settings),
            answerer=build_answerer(settings),
            settings=settings,
        )
        exact: ExactCache = (
            RedisCache(settings.redis_url.get_secret_value(), settings.redis_timeout_s)
            if settings.redis_url is not None
            else InProcessCache(settings.cache_max_entries)
        )
        cached = CachedRag(rag, exact, SemanticCache(db, settings.cache_ttl_s), embeddings)
        state = cls(
            settings=settings,
            db=db,
            embeddings=embeddings,
            pipeline=IngestPipeline(db, embeddings, settings),
            rag=rag,
            cached=cached,
        )
        state.ready = True
        return state

    async def stop(self) -> None:
        self.ready = False
        await self.cached.drain()
        await self.cached.exact.close()
        await self.db.dispose()
