"""Request and response bodies of the REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Citation(BaseModel):
    n: int = Field(description="The number used in the answer's [n] markers")
    document_id: uuid.UUID
    chunk_id: uuid.UUID
    title: str
    snippet: str
    score: float
    page: int | None = None


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="The question; limited by MAX_QUERY_CHARS")
    top_k: int | None = Field(default=None, ge=1, description="Sources to cite; limited by MAX_TOP_K")
    filters: dict[str, Any] | None = Field(default=None, description='Metadata filters, e.g. {"lang": ["en", "de"]}')
    stream: bool = False
    cache: bool = Field(default=True, description="false skips the answer cache for this request")


class QueryResponse(BaseModel):
    query_id: uuid.UUID
    answer: str
    mode: str = Field(description="'generative' (LLM) or 'extractive' (quoted sentences, no LLM)")
    model: str
    citations: list[Citation]
    cached: bool | str = Field(description='false, "exact" or "semantic"')
    timings_ms: dict[str, float]


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    title: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, min_length=1, max_length=500)


class IngestJson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)


class IngestedDocument(BaseModel):
    index: int
    filename: str | None
    status: str
    document_id: uuid.UUID | None
    chunks: int
    error: dict[str, Any] | None = None


class IngestResponse(BaseModel):
    job_id: uuid.UUID
    status: str
    documents: list[IngestedDocument]


class JobOut(BaseModel):
    job_id: uuid.UUID
    status: str
    created_at: datetime | None
    finished_at: datetime | None
    documents: list[IngestedDocument]


class DocumentOut(BaseModel):
    document_id: uuid.UUID
    external_id: str | None
    title: str
    source: str | None
    content_type: str
    content_hash: str
    metadata: dict[str, Any]
    chunks: int
    size_bytes: int
    created_at: datetime | None


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None
