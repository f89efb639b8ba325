"""Semantic cache on the real database and model: hard partitions, salient-token guard, thresholds."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.state import AppState
from chains.index import vector_literal
from chains.semantic_cache import SemanticCache, salient_tokens
from tests.conftest import TenantHandle


def test_salient_tokens() -> None:
    assert salient_tokens("What is the refund window in Germany?") == {"germany"}
    assert salient_tokens("What's the limit for order 1234?") == {"1234"}
    assert salient_tokens("How long do refunds take?") == frozenset()


@pytest.fixture
def cache(app_state: AppState) -> SemanticCache:
    return SemanticCache(app_state.db, ttl_s=3600)


async def test_paraphrase_hits_only_inside_its_partition(
    app_state: AppState, cache: SemanticCache, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    embed = app_state.embeddings.embed_query
    stored = "How many days of annual leave do employees get?"
    await cache.store(a.tenant_id, 1, "p1", stored, embed(stored), {"answer": "27 days"})
    paraphrase = "How many days of annual leave does an employee get?"
    hit = await cache.lookup(a.tenant_id, "p1", paraphrase, embed(paraphrase), 0.9)
    assert hit is not None and hit.response == {"answer": "27 days"} and hit.similarity > 0.9
    assert 3590 < hit.expires_in_s <= 3600  # what is left of the stored answer's hour
    assert await cache.lookup(a.tenant_id, "p2", paraphrase, embed(paraphrase), 0.9) is None  # other partition
    assert (
        await cache.lookup(b.tenant_id, "p1", paraphrase, embed(paraphrase), 0.0) is None
    )  # other tenant, any similarity
    unrelated = "Where is the cafeteria?"
    assert await cache.lookup(a.tenant_id, "p1", unrelated, embed(unrelated), 0.9) is None


async def test_different_entities_never_share_an_answer(
    app_state: AppState, cache: SemanticCache, tenant: TenantHandle
) -> None:
    embed = app_state.embeddings.embed_query
    await cache.store(
        tenant.tenant_id, 1, "p", "Refund window in Germany?", embed("Refund window in Germany?"), {"a": 1}
    )
    assert (
        await cache.lookup(tenant.tenant_id, "p", "Refund window in France?", embed("Refund window in France?"), 0.5)
        is None
    )
    assert await cache.lookup(tenant.tenant_id, "p", "refund window in Germany", embed("refund window in Germany"), 0.9)


async def test_newer_versions_purge_older_entries(
    app_state: AppState, cache: SemanticCache, tenant: TenantHandle
) -> None:
    embed = app_state.embeddings.embed_query
    await cache.store(tenant.tenant_id, 1, "old", "q one", embed("q one"), {"a": 1})
    await cache.store(tenant.tenant_id, 2, "new", "q two", embed("q two"), {"a": 2})
    assert await cache.lookup(tenant.tenant_id, "old", "q one", embed("q one"), 0.5) is None
    assert await cache.lookup(tenant.tenant_id, "new", "q two", embed("q two"), 0.5) is not None


async def test_the_lookup_searches_as_the_application_role_in_the_tenants_scope(
    app_state: AppState, cache: SemanticCache, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """The lookup is one statement (no transaction around it): the function it calls enters the tenant's
    scope as tenant sessions do, so row-level security holds the search to that tenant's rows: with the
    search's own tenant filter gone, the policy alone still hides the other tenant's entry."""
    a, b = await make_tenant(), await make_tenant()
    question = "Which floor is the library on?"
    vector = app_state.embeddings.embed_query(question)
    await cache.store(b.tenant_id, 1, "p1", question, vector, {"answer": "floor 3"})
    async with app_state.db.admin_session() as session:
        rows = (
            await session.execute(
                text("SELECT count(*) FROM semantic_cache_nearest(:t, 'p1', :d, CAST(:q AS vector), 5)"),
                {"t": a.tenant_id, "d": len(vector), "q": vector_literal(vector)},
            )
        ).scalar_one()
        scope = (await session.execute(text("SELECT current_user, current_setting('app.tenant_id')"))).one()
        unfiltered = (await session.execute(text("SELECT count(*) FROM semantic_cache"))).scalar_one()
    assert rows == 0
    assert scope == (app_state.db.app_role, str(a.tenant_id))  # what the function left for its transaction
    assert unfiltered == 0  # tenant b's entry is there, but not for tenant a's scope
    assert await cache.lookup(b.tenant_id, "p1", question, vector, 0.99) is not None
