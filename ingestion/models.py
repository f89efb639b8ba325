"""Document and ingest-job tables (schema owned by core/migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    external_id: str | None = None
    title: str
    source: str | None = None
    content_type: str
    content_hash: str
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSONB, nullable=False))
    chunk_count: int
    size_bytes: int
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))


class IngestJob(SQLModel, table=True):
    __tablename__ = "ingest_jobs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    status: str
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    results: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
