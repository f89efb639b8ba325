"""The components a worker process needs, built the same way as the API's (no migrations: the API
owns the schema)."""

from __future__ import annotations

import asyncio

from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.embedding import build_embeddings, ingestion_embeddings
from ragapi.ingestion.pipeline import IngestPipeline
from ragapi.ingestion.uploads import build_upload_store
from ragapi.ingestion.worker import IngestWorker
from ragapi.retrieval.vectors.registry import build_vector_indexes


async def build_worker(settings: Settings) -> IngestWorker:
    db = await asyncio.to_thread(Database.connect, settings)
    embeddings = ingestion_embeddings(settings, build_embeddings(settings))
    warm_up = getattr(embeddings, "warm_up", None)
    if warm_up is not None:
        await asyncio.to_thread(warm_up)
    pipeline = IngestPipeline(db, embeddings, settings, build_vector_indexes(settings, db))
    return IngestWorker(db, pipeline, build_upload_store(settings), settings)
