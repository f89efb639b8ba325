"""Conversation tables (schema owned by core/migrations/versions/0017_conversations.py) and who owns one."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Column, DateTime, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ragapi.answering.conversations.limits import MAX_KNOWLEDGE_BASE_CHARS as MAX_KNOWLEDGE_BASE_CHARS
from ragapi.answering.conversations.limits import MAX_KNOWLEDGE_BASES as MAX_KNOWLEDGE_BASES
from ragapi.answering.conversations.limits import MAX_TITLE_CHARS as MAX_TITLE_CHARS
from ragapi.tenants.context import TenantContext


@dataclass(frozen=True, slots=True)
class Owner:
    """The principal a conversation belongs to, in its tenant: an API key, a user, or the operator. Nobody
    else sees it, the tenant's other keys and users included."""

    tenant_id: uuid.UUID
    kind: str
    id: uuid.UUID

    @classmethod
    def of(cls, tenant: TenantContext) -> Owner:
        return cls(tenant.tenant_id, tenant.principal.kind, tenant.principal.id)

    def message(self, conversation_id: uuid.UUID, ord_: int, new: NewMessage) -> ConversationMessage:
        return ConversationMessage(tenant_id=self.tenant_id, conversation_id=conversation_id, ord=ord_, **asdict(new))


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    owner_kind: str
    owner_id: uuid.UUID
    title: str | None = None
    knowledge_bases: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(Text), nullable=False))
    message_count: int = 0
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    updated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: the store numbers it."""

    role: str  # user | assistant
    content: str
    standalone_question: str | None = None
    rewrite: str | None = None
    query_id: uuid.UUID | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    mode: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None


class ConversationMessage(SQLModel, table=True):
    """A turn: the user's question (with the standalone question searched for it and how that was made) or
    the assistant's answer (with its query-log id, citations, mode, model and usage)."""

    __tablename__ = "conversation_messages"

    tenant_id: uuid.UUID = Field(primary_key=True)
    conversation_id: uuid.UUID = Field(primary_key=True)
    ord: int = Field(primary_key=True)
    role: str  # user | assistant
    content: str
    standalone_question: str | None = None  # user messages
    rewrite: str | None = None  # user messages: how the standalone question was made (Standalone.rewrite)
    query_id: uuid.UUID | None = None  # assistant messages: the query log's id, which POST /v1/feedback takes
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    mode: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
