"""The components a worker process needs, built the same way as the API's (no migrations: the API
owns the schema)."""

from __future__ import annotations

import asyncio

from chains.embeddings import build_embeddings, ingestion_embeddings
from chains.indexes import build_vector_indexes
from core.database import Database
from core.settings import Settings
from ingestion.pipeline import IngestPipeline
from ingestion.uploads import build_upload_store
from ingestion.worker import IngestWorker


async def build_worker(settings: Settings) -> IngestWorker:
    db = await asyncio.to_thread(Database.connect, settings)
    embeddings = ingestion_embeddings(settings, build_embeddings(settings))
    warm_up = getattr(embeddings, "warm_up", None)
    if warm_up is not None:
        await asyncio.to_thread(warm_up)
    pipeline = IngestPipeline(db, embeddings, settings, build_vector_indexes(settings, db))
    return IngestWorker(db, pipeline, build_upload_store(settings), settings)
