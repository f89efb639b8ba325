"""The conversation store: row-level security like every tenant table (the application role sees and writes
only its tenant's rows), owner-only statements, messages numbered under the row's lock within the limit,
and the retention purge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ragapi.answering.conversations.models import ConversationMessage, NewMessage, Owner
from ragapi.answering.conversations.store import ConversationStore, purge
from ragapi.core.database import Database
from ragapi.core.errors import Conflict
from ragapi.generation.condense import Turn as Exchange
from tests.conftest import MakeTenant, TenantHandle


def owner_of(tenant: TenantHandle, kind: str = "key") -> Owner:
    return Owner(tenant.tenant_id, kind, uuid.uuid4())


def question(content: str) -> NewMessage:
    return NewMessage(role="user", content=content, standalone_question=content, rewrite="none")


async def test_the_application_role_sees_and_writes_only_its_tenants_conversations(
    db: Database, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    store, other = ConversationStore(db), await make_tenant()
    mine = await store.create(owner_of(tenant), "Secret plans", ["hr"])
    assert await store.append(owner_of(tenant), mine.id, question("q"), None) is None  # another owner: absent
    owner = Owner(tenant.tenant_id, mine.owner_kind, mine.owner_id)
    assert await store.append(owner, mine.id, question("What are the plans?"), None) is not None
    for table in ("conversations", "conversation_messages"):
        # No tenant predicate at all: row-level security alone decides what the application role sees.
        async with db.tenant_session(other.tenant_id) as session:
            role = (await session.execute(text("SELECT current_user"))).scalar_one()
            seen = (await session.execute(text(f"SELECT tenant_id FROM {table}"))).scalars().all()  # noqa: S608
        assert role == db.app_role and tenant.tenant_id not in seen
        async with db.tenant_session(tenant.tenant_id) as session:
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() >= 1  # noqa: S608
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.tenant_session(other.tenant_id) as session:
            await session.execute(
                text(
                    "INSERT INTO conversations (id, tenant_id, owner_kind, owner_id) "
                    "VALUES (gen_random_uuid(), :t, 'key', gen_random_uuid())"
                ),
                {"t": tenant.tenant_id},
            )
    with pytest.raises(DBAPIError):  # nor a message into the other tenant's conversation
        async with db.tenant_session(other.tenant_id) as session:
            session.add(
                ConversationMessage(
                    tenant_id=tenant.tenant_id,
                    conversation_id=mine.id,
                    ord=9,
                    role="user",
                    content="x",
                    standalone_question="x",
                )
            )
    async with db.tenant_session(other.tenant_id) as session:  # nor change or delete them
        changed = await session.execute(text("UPDATE conversations SET title = 'x' WHERE id = :c"), {"c": mine.id})
        deleted = await session.execute(text("DELETE FROM conversations WHERE id = :c"), {"c": mine.id})
    assert changed.rowcount == 0 and deleted.rowcount == 0  # type: ignore[attr-defined]
    kept = await store.with_messages(owner, mine.id)
    assert (
        kept is not None and kept[0].title == "Secret plans" and [m.content for m in kept[1]] == ["What are the plans?"]
    )


async def test_only_the_owner_reaches_a_conversation(db: Database, tenant: TenantHandle) -> None:
    store = ConversationStore(db)
    owner = owner_of(tenant, "user")
    made = await store.create(owner, None, [])
    for someone in (owner_of(tenant, "user"), Owner(tenant.tenant_id, "key", owner.id)):  # same id, other kind
        assert await store.get(someone, made.id) is None
        assert await store.with_messages(someone, made.id) is None
        assert await store.exchanges(someone, made.id, 5) is None
        assert await store.delete(someone, made.id) is False
        assert (await store.page(someone, None, 10, 100))[0] == []
    assert (await store.page(owner, None, 10, 100))[0] == [made]
    assert await store.delete(owner, made.id) is True and await store.get(owner, made.id) is None


async def test_messages_are_numbered_in_order_and_held_to_the_limit(db: Database, tenant: TenantHandle) -> None:
    store, owner = ConversationStore(db), owner_of(tenant)
    made = await store.create(owner, None, [])
    results = await asyncio.gather(
        *(store.append(owner, made.id, question(f"q{n}"), 6) for n in range(10)), return_exceptions=True
    )
    stored = [r for r in results if isinstance(r, ConversationMessage)]
    assert sorted(m.ord for m in stored) == list(range(6))
    assert all(isinstance(r, Conflict) for r in results if r not in stored)
    found = await store.get(owner, made.id)
    assert found is not None and found.message_count == 6
    # A question keeps room for its answer.
    other = await store.create(owner, None, [])
    await store.append(owner, other.id, question("one"), 2, room_for=1)
    with pytest.raises(Conflict, match="CONVERSATION_MAX_MESSAGES"):
        await store.append(owner, other.id, question("two"), 2, room_for=1)
    # citing nothing: an answer citing a document its reader cannot read now is left out (test_redaction)
    answer = NewMessage(role="assistant", content="an answer", query_id=uuid.uuid4(), citations=[])
    assert (await store.append(owner, other.id, answer, None)) is not None
    assert await store.exchanges(owner, other.id, 5) == (
        await store.get(owner, other.id),
        [Exchange("one", "an answer")],
    )


async def test_exchanges_are_the_last_turns_oldest_first(db: Database, tenant: TenantHandle) -> None:
    store, owner = ConversationStore(db), owner_of(tenant)
    made = await store.create(owner, None, [])
    for n in range(4):
        await store.append(owner, made.id, question(f"q{n}"), None)
        await store.append(owner, made.id, NewMessage(role="assistant", content=f"a{n}", query_id=uuid.uuid4()), None)
    await store.append(owner, made.id, question("q4"), None)  # not answered yet
    found = await store.exchanges(owner, made.id, 3)
    assert found is not None and found[1] == [Exchange("q2", "a2"), Exchange("q3", "a3"), Exchange("q4")]
    assert (await store.exchanges(owner, made.id, 0)) == (found[0], [])


async def test_untouched_conversations_are_purged_with_their_messages(db: Database, tenant: TenantHandle) -> None:
    store, owner = ConversationStore(db), owner_of(tenant)
    old, recent = await store.create(owner, "old", []), await store.create(owner, "recent", [])
    await store.append(owner, old.id, question("long ago"), None)
    async with db.admin_session() as session:
        await session.execute(
            text("UPDATE conversations SET updated_at = now() - interval '91 days' WHERE id = :c"), {"c": old.id}
        )
    assert await purge(db, 90) >= 1
    assert await store.get(owner, old.id) is None and await store.get(owner, recent.id) is not None
    async with db.admin_session() as session:
        left = await session.execute(
            text("SELECT count(*) FROM conversation_messages WHERE conversation_id = :c"), {"c": old.id}
        )
        assert left.scalar_one() == 0
    assert await purge(db, 90, now=datetime.now(UTC) + timedelta(days=91)) >= 1  # the recent one, later on
    assert await store.get(owner, recent.id) is None
