"""Knowledge bases: a tenant's separate collections of documents, each with its own retrieval settings.

A tenant has any number; each document belongs to exactly one. The tenant's `default` knowledge base
has the tenant's own id: requests that name none use it, and it is created when something is first
ingested into it. Every other one is created through the API. A knowledge base carries the counts
BM25 needs and a version that every write bumps (it partitions the answer cache).

Requests name knowledge bases by id or by name (`KnowledgeBaseRef`); names never look like ids, so a
reference is never ambiguous.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ragapi.core import inputs
from ragapi.core.errors import InvalidInput

DEFAULT_NAME = "default"
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_REFS = 20  # knowledge bases one request may name


class KnowledgeBaseSettings(BaseModel):
    """A knowledge base's own retrieval settings; an unset one follows the service's (the setting of the
    same name in upper case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size_tokens: int | None = Field(default=None, ge=16, le=4096, description="Word pieces per chunk")
    chunk_overlap_tokens: int | None = Field(
        default=None, ge=0, le=1024, description="Word pieces shared by neighbouring chunks"
    )
    embedding_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Chosen when the knowledge base is created: the service's model or the bundled one",
    )
    fusion_dense_weight: float | None = Field(default=None, ge=0.0, le=1.0, description="Dense weight in fusion")
    rerank: bool | None = Field(default=None, description="false: no reranking even where a reranker is set up")
    top_k: int | None = Field(default=None, ge=1, description="Sources per answer when a question names none")
    answer_mode: Literal["extractive", "llm"] | None = Field(
        default=None, description="`llm` needs an LLM configured (OPENAI_API_KEY)"
    )

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> KnowledgeBaseSettings:
        """As stored (jsonb); InvalidInput naming the setting when a value is not one."""
        try:
            return cls.model_validate(dict(value or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"settings.{where}: {first['msg']}", f"settings.{where}") from exc

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    embedding_model: str
    embedding_dim: int
    chunk_count: int = 0
    token_count: int = 0
    version: int = 0
    vector_backend: str = "pgvector"
    settings: KnowledgeBaseSettings = field(default_factory=KnowledgeBaseSettings)
    description: str = ""
    status: str = "active"
    created_at: datetime | None = None
    deletion: dict[str, Any] | None = None  # while being deleted: how many documents there were

    @property
    def avgdl(self) -> float:
        return self.token_count / self.chunk_count if self.chunk_count else 0.0

    @property
    def is_default(self) -> bool:
        return self.id == self.tenant_id

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> KnowledgeBase:
        """From a row of `knowledge_bases`, as SQL returns it or as `to_jsonb` does (admission)."""
        created = row.get("created_at")
        return cls(
            id=uuid.UUID(str(row["id"])),
            tenant_id=uuid.UUID(str(row["tenant_id"])),
            name=row["name"],
            embedding_model=row["embedding_model"],
            embedding_dim=int(row["embedding_dim"]),
            chunk_count=int(row["chunk_count"]),
            token_count=int(row["token_count"]),
            version=int(row["version"]),
            vector_backend=row["vector_backend"],
            settings=KnowledgeBaseSettings.parse(row.get("settings")),
            description=row.get("description") or "",
            status=row.get("status") or "active",
            created_at=datetime.fromisoformat(created) if isinstance(created, str) else created,
            deletion=row.get("deletion"),
        )


def parse_refs(refs: Sequence[Any] | None, field_name: str = "knowledge_bases") -> tuple[str, ...] | None:
    """The knowledge bases a request names, validated: ids in their canonical form, names as written,
    each once. None: none named."""
    if refs is None:
        return None
    if isinstance(refs, str) or not isinstance(refs, Sequence):
        raise InvalidInput(f"{field_name} must be a list of knowledge-base ids or names")
    if not refs:
        raise InvalidInput(f"{field_name} must name at least one knowledge base, or be left out")
    if len(refs) > MAX_REFS:
        raise InvalidInput(f"{field_name} names more than {MAX_REFS} knowledge bases")
    out: list[str] = []
    for ref in refs:
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"{field_name}: every knowledge base is an id or a name (a non-empty string)")
        ref = canonical_ref(ref, field_name)
        if ref not in out:
            out.append(ref)
    return tuple(out)


def canonical_ref(ref: str, field_name: str = "knowledge_base") -> str:
    inputs.check(ref, field_name)
    ref = ref.strip()
    kb_id = as_id(ref)
    if kb_id is not None:
        return str(kb_id)
    if len(ref) > MAX_NAME_CHARS:
        raise InvalidInput(f"{field_name}: no knowledge base is named with more than {MAX_NAME_CHARS} characters")
    return ref


def check_name(name: str) -> str:
    inputs.check(name, "name")
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidInput(f"name must have 1 to {MAX_NAME_CHARS} characters", "name")
    if as_id(name) is not None:
        raise InvalidInput("name must not look like a knowledge-base id", "name")
    return name


def as_id(value: str) -> uuid.UUID | None:
    """`value` as a knowledge-base id, if it is one (names never look like ids)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


_COLUMNS = (
    "id, tenant_id, name, embedding_model, embedding_dim, chunk_count, token_count, version, vector_backend, "
    "settings, description, status, created_at, deletion"
)


async def find(session: AsyncSession, tenant_id: uuid.UUID, ref: str, lock: bool = False) -> KnowledgeBase | None:
    """A live knowledge base of the tenant by id or name (`canonical_ref`); `lock`: take its writer lock."""
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {_COLUMNS} FROM knowledge_bases WHERE tenant_id = :t AND status = 'active' "
                    f"AND (id::text = :r OR name = :r){' FOR UPDATE' if lock else ''}"
                ),
                {"t": tenant_id, "r": ref},
            )
        )
        .mappings()
        .first()
    )
    return KnowledgeBase.of(row) if row else None


async def get(session: AsyncSession, kb_id: uuid.UUID, lock: bool = False) -> KnowledgeBase | None:
    """A knowledge base by id, whatever its status (row-level security keeps it within the tenant)."""
    row = (
        (
            await session.execute(
                text(f"SELECT {_COLUMNS} FROM knowledge_bases WHERE id = :k{' FOR UPDATE' if lock else ''}"),
                {"k": kb_id},
            )
        )
        .mappings()
        .first()
    )
    return KnowledgeBase.of(row) if row else None


async def list_all(session: AsyncSession, tenant_id: uuid.UUID) -> list[KnowledgeBase]:
    rows = (
        (
            await session.execute(
                text(f"SELECT {_COLUMNS} FROM knowledge_bases WHERE tenant_id = :t ORDER BY created_at, id"),
                {"t": tenant_id},
            )
        )
        .mappings()
        .all()
    )
    return [KnowledgeBase.of(r) for r in rows]


async def insert(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kb_id: uuid.UUID,
    name: str,
    model: str,
    dim: int,
    backend: str,
    settings: KnowledgeBaseSettings,
    description: str = "",
) -> bool:
    """Create a knowledge base; False when the tenant already has a live one of that name (or that id)."""
    created = (
        await session.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, description, settings, embedding_model, "
                "embedding_dim, vector_backend) VALUES (:k, :t, :n, :d, CAST(:s AS jsonb), :m, :dim, :b) "
                "ON CONFLICT DO NOTHING RETURNING id"
            ),
            {
                "k": kb_id,
                "t": tenant_id,
                "n": name,
                "d": description,
                "s": settings.model_dump_json(exclude_none=True),
                "m": model,
                "dim": dim,
                "b": backend,
            },
        )
    ).first()
    return created is not None
