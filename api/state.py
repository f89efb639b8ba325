"""What the running service holds: built once at start-up, handed to routes through dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from chains.embeddings import build_embeddings, embedding_identity
from chains.generate import build_answerer
from chains.index import ensure_dense_index
from chains.rag import RagChain
from chains.rerank import build_reranker
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
    ready: bool = False

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
        state = cls(
            settings=settings, db=db, embeddings=embeddings, pipeline=IngestPipeline(db, embeddings, settings), rag=rag
        )
        state.ready = True
        return state

    async def stop(self) -> None:
        self.ready = False
        await self.db.dispose()
