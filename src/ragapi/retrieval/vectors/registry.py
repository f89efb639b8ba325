"""The vector backends this deployment has: pgvector always, Pinecone when it is configured."""

from __future__ import annotations

from ragapi.core.database import Database
from ragapi.core.settings import Settings, VectorBackend
from ragapi.retrieval.vectors.base import VectorIndex
from ragapi.retrieval.vectors.pgvector import PgVectorIndex
from ragapi.retrieval.vectors.pinecone import PineconeIndex


def build_vector_indexes(settings: Settings, db: Database) -> dict[str, VectorIndex]:
    """pgvector always; Pinecone too when it is configured (new knowledge bases follow VECTOR_BACKEND)."""
    indexes: dict[str, VectorIndex] = {
        "pgvector": PgVectorIndex(db, settings.hnsw_ef_search, settings.bm25_candidate_budget)
    }
    configured = settings.pinecone_api_key and settings.pinecone_index_host and settings.pinecone_sparse_index_host
    if configured:
        assert settings.pinecone_api_key is not None  # noqa: S101 - for the type checker
        indexes["pinecone"] = PineconeIndex(
            db,
            settings.pinecone_api_key.get_secret_value(),
            str(settings.pinecone_index_host),
            str(settings.pinecone_sparse_index_host),
            settings.pinecone_batch_size,
            settings.pinecone_max_retries,
        )
    elif settings.vector_backend is VectorBackend.PINECONE:
        raise ValueError(
            "VECTOR_BACKEND=pinecone needs PINECONE_API_KEY, PINECONE_INDEX_HOST, PINECONE_SPARSE_INDEX_HOST"
        )
    return indexes
