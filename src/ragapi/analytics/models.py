"""Query-log and feedback tables (schema owned by core/migrations/versions/0005_query_log.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Column, DateTime
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel


class QueryLog(SQLModel, table=True):
    __tablename__ = "query_log"

    id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    # the knowledge bases the question searched
    knowledge_base_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True))))
    principal_kind: str
    principal_id: uuid.UUID
    surface: str
    request_id: str | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    status: str
    error_status: int | None = None
    cache: str = "none"
    query: str | None = None
    embed_ms: float | None = None
    retrieve_ms: float | None = None
    rerank_ms: float | None = None
    generate_ms: float | None = None
    total_ms: float | None = None
    sources: int = 0
    top_score: float | None = None
    chunk_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True))))
    cited_chunk_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True))))
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedding_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    query_id: uuid.UUID
    principal_kind: str
    principal_id: uuid.UUID
    score: float
    comment: str | None = None
    chunk_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True))))
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    updated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
