"""Document and ingest-job tables (schema owned by core/migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field, SQLModel


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    external_id: str | None = None
    title: str
    source: str | None = None
    content_type: str
    content_hash: str
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSONB, nullable=False))
    chunk_count: int
    size_bytes: int
    access: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True))
    )  # None: the whole tenant's
    readers: list[uuid.UUID] | None = Field(default=None, sa_column=Column(ARRAY(PgUUID(as_uuid=True))))
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))


class IngestJob(SQLModel, table=True):
    __tablename__ = "ingest_jobs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    knowledge_base_id: uuid.UUID  # where its documents go
    status: str = "queued"
    files_total: int = 0
    error: str | None = None
    trace_context: dict[str, str] | None = Field(default=None, sa_column=Column(JSONB))  # W3C traceparent of the submit
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class IngestFile(SQLModel, table=True):
    """One file of a job: what to ingest, where its bytes wait, and how it went."""

    __tablename__ = "ingest_files"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID
    tenant_id: uuid.UUID
    ord: int
    filename: str | None = None
    content_type: str | None = None
    title: str | None = None
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSONB, nullable=False))
    external_id: str | None = None
    url: str | None = None
    access: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True))
    )  # the document's to be
    # the submitter's view (`ReaderView.setting`): whether it may change the access of a document that has
    # these bytes already; None: it may not
    access_by: str | None = None
    size_bytes: int = 0
    blob_key: str | None = None
    status: str = "queued"
    attempts: int = 0
    claimed_by: str | None = None
    document_id: uuid.UUID | None = None
    chunks: int = 0
    removed_characters: int = 0  # NUL and lone surrogates removed from the file's extracted text
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    not_before: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
