"""Conversations in PostgreSQL: made, listed, read, appended to and deleted by their owner only.

Every statement runs in the owner's tenant scope (row-level security backs the explicit tenant predicate)
and names the owner, so another principal's conversation, in this tenant or another, is as absent as one
that never existed. Messages are numbered by the conversation's `message_count`, which the append raises
under the row's lock: concurrent questions to one conversation get consecutive numbers, and none gets past
the limit. Retention: conversations untouched for CONVERSATION_RETENTION_DAYS go with their messages
(`purge`, run hourly by `ragapi.core.retention`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Text, delete, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import col, select

from ragapi.answering.conversations.models import Conversation, ConversationMessage, NewMessage, Owner
from ragapi.answering.conversations.redaction import cited_documents, hides
from ragapi.core.database import Database
from ragapi.core.errors import Conflict
from ragapi.core.pagination import page_query, split_page
from ragapi.generation.condense import Turn as Exchange
from ragapi.ingestion.documents import readable

_NEXT = text(
    "UPDATE conversations SET message_count = message_count + 1, updated_at = now() "
    "WHERE tenant_id = :t AND id = :c AND owner_kind = :k AND owner_id = :o RETURNING message_count"
)
# each question with the answer it got (the message after it), when it got one
_EXCHANGES = text(
    "SELECT q.content AS question, coalesce(a.content, '') AS answer, coalesce(a.citations, '[]') AS citations "
    "FROM conversation_messages q "
    "LEFT JOIN conversation_messages a ON a.tenant_id = q.tenant_id AND a.conversation_id = q.conversation_id "
    "AND a.ord = q.ord + 1 AND a.role = 'assistant' "
    "WHERE q.tenant_id = :t AND q.conversation_id = :c AND q.role = 'user' ORDER BY q.ord DESC LIMIT :n"
).columns(question=Text, answer=Text, citations=JSONB)


def _owned(owner: Owner) -> list[ColumnElement[bool]]:
    return [
        col(Conversation.tenant_id) == owner.tenant_id,
        col(Conversation.owner_kind) == owner.kind,
        col(Conversation.owner_id) == owner.id,
    ]


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, owner: Owner, title: str | None, knowledge_bases: Sequence[str]) -> Conversation:
        conversation = Conversation(
            tenant_id=owner.tenant_id,
            owner_kind=owner.kind,
            owner_id=owner.id,
            title=title,
            knowledge_bases=list(knowledge_bases),
        )
        async with self.db.tenant_session(owner.tenant_id) as session:
            session.add(conversation)
            await session.flush()
            await session.refresh(conversation)  # the database's timestamps
        return conversation

    async def page(
        self, owner: Owner, cursor: str | None, limit: int, max_limit: int
    ) -> tuple[list[Conversation], str | None]:
        """A page of the owner's conversations, newest first, and the next page's cursor (None: the last)."""
        statement = page_query(select(Conversation).where(*_owned(owner)), Conversation, cursor, limit, max_limit)
        async with self.db.tenant_session(owner.tenant_id) as session:
            return split_page(list((await session.execute(statement)).scalars()), limit)

    async def get(self, owner: Owner, conversation_id: uuid.UUID) -> Conversation | None:
        statement = select(Conversation).where(*_owned(owner), col(Conversation.id) == conversation_id)
        async with self.db.tenant_session(owner.tenant_id) as session:
            return (await session.execute(statement)).scalar_one_or_none()

    async def with_messages(
        self, owner: Owner, conversation_id: uuid.UUID
    ) -> tuple[Conversation, list[ConversationMessage]] | None:
        """The conversation and all its messages in order (at most CONVERSATION_MAX_MESSAGES)."""
        found = select(Conversation).where(*_owned(owner), col(Conversation.id) == conversation_id)
        messages = (
            select(ConversationMessage)
            .where(
                col(ConversationMessage.tenant_id) == owner.tenant_id,
                col(ConversationMessage.conversation_id) == conversation_id,
            )
            .order_by(col(ConversationMessage.ord))
        )
        async with self.db.tenant_session(owner.tenant_id) as session:
            conversation = (await session.execute(found)).scalar_one_or_none()
            if conversation is None:
                return None
            return conversation, list((await session.execute(messages)).scalars())

    async def readable_documents(self, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `ids` the request's view reads now (row-level security decides; a deleted one is none)."""
        if not ids:
            return set()
        async with self.db.tenant_session(tenant_id) as session:
            return await readable(session, tenant_id, ids)

    async def exchanges(
        self, owner: Owner, conversation_id: uuid.UUID, turns: int
    ) -> tuple[Conversation, list[Exchange]] | None:
        """The conversation and its last `turns` questions (the user's messages) with their answers, oldest
        first; an answer citing a document the request's view does not read now is left out (`redaction`)."""
        found = select(Conversation).where(*_owned(owner), col(Conversation.id) == conversation_id)
        async with self.db.tenant_session(owner.tenant_id) as session:
            conversation = (await session.execute(found)).scalar_one_or_none()
            if conversation is None:
                return None
            if turns <= 0:
                return conversation, []
            params = {"t": owner.tenant_id, "c": conversation_id, "n": turns}
            newest_first = (await session.execute(_EXCHANGES, params)).all()
            cited = {d for r in newest_first for d in cited_documents(r.citations)}
            shown = await readable(session, owner.tenant_id, cited)
        return conversation, [
            Exchange(r.question, "" if hides(r.citations, shown) else r.answer) for r in reversed(newest_first)
        ]

    async def append(
        self,
        owner: Owner,
        conversation_id: uuid.UUID,
        new: NewMessage,
        limit: int | None,
        room_for: int = 0,
    ) -> ConversationMessage | None:
        """Store `new` as the conversation's next message (numbered here). With a `limit`, only if the
        conversation keeps room for `room_for` more messages after it (a question keeps room for its
        answer): else Conflict, storing nothing. None when the owner has no such conversation."""
        params = {"t": owner.tenant_id, "c": conversation_id, "k": owner.kind, "o": owner.id}
        async with self.db.tenant_session(owner.tenant_id) as session:
            count = (await session.execute(_NEXT, params)).scalar_one_or_none()
            if count is None:
                return None
            if limit is not None and count + room_for > limit:
                raise Conflict(f"this conversation is full: at most {limit} messages (CONVERSATION_MAX_MESSAGES)")
            message = owner.message(conversation_id, count - 1, new)
            session.add(message)
            await session.flush()
            await session.refresh(message)
        return message

    async def delete(self, owner: Owner, conversation_id: uuid.UUID) -> bool:
        """Delete the conversation with its messages; False when the owner has no such conversation."""
        statement = delete(Conversation).where(*_owned(owner), col(Conversation.id) == conversation_id)
        async with self.db.tenant_session(owner.tenant_id) as session:
            result = await session.execute(statement.returning(col(Conversation.id)))
            return result.first() is not None

    async def delete_all(self, owner: Owner) -> int:
        """Every conversation of an owner who is gone (a deleted user), with their messages."""
        async with self.db.tenant_session(owner.tenant_id) as session:
            result = await session.execute(delete(Conversation).where(*_owned(owner)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge(db: Database, retention_days: int, now: datetime | None = None) -> int:
    """Delete every tenant's conversations untouched for `retention_days` (their messages go with them)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    async with db.admin_session() as session:
        result = await session.execute(text("DELETE FROM conversations WHERE updated_at < :cutoff"), {"cutoff": cutoff})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
