"""Semantic cache on the real database and model: hard partitions, salient-token guard, thresholds."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from ragapi.answering.admission import AdmissionStore
from ragapi.answering.semantic_cache import SemanticCache, SemanticSearch, salient_tokens
from ragapi.api.state import AppState
from ragapi.retrieval.chunks import vector_literal
from ragapi.tenants.context import TenantPlan
from ragapi.tenants.service import set_cache_policy
from tests.answering.test_admission import context
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
    await cache.store(a.tenant_id, [a.tenant_id], 1, "p1", stored, embed(stored), {"answer": "27 days"})
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
        tenant.tenant_id,
        [tenant.tenant_id],
        1,
        "p",
        "Refund window in Germany?",
        embed("Refund window in Germany?"),
        {"a": 1},
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
    await cache.store(tenant.tenant_id, [tenant.tenant_id], 1, "old", "q one", embed("q one"), {"a": 1})
    await cache.store(tenant.tenant_id, [tenant.tenant_id], 2, "new", "q two", embed("q two"), {"a": 2})
    assert await cache.lookup(tenant.tenant_id, "old", "q one", embed("q one"), 0.5) is None
    assert await cache.lookup(tenant.tenant_id, "new", "q two", embed("q two"), 0.5) is not None


async def test_a_newer_version_of_one_knowledge_base_keeps_the_entries_of_another(
    app_state: AppState, cache: SemanticCache, tenant: TenantHandle
) -> None:
    """Versions are per knowledge base: storing an answer from the wiki at its version 5 must not drop
    the handbook's entries at its version 1."""
    embed = app_state.embeddings.embed_query
    handbook, wiki = uuid.uuid4(), uuid.uuid4()
    await cache.store(tenant.tenant_id, [handbook], 1, "hb", "q one", embed("q one"), {"a": 1})
    await cache.store(tenant.tenant_id, [wiki], 5, "wk", "q two", embed("q two"), {"a": 2})
    await cache.store(tenant.tenant_id, [handbook, wiki], 6, "both", "q three", embed("q three"), {"a": 3})
    assert await cache.lookup(tenant.tenant_id, "hb", "q one", embed("q one"), 0.5) is not None
    assert await cache.lookup(tenant.tenant_id, "wk", "q two", embed("q two"), 0.5) is not None
    await cache.store(tenant.tenant_id, [wiki], 6, "wk6", "q four", embed("q four"), {"a": 4})
    assert await cache.lookup(tenant.tenant_id, "wk", "q two", embed("q two"), 0.5) is None  # its own older one
    assert await cache.lookup(tenant.tenant_id, "both", "q three", embed("q three"), 0.5) is not None


async def test_the_lookup_searches_as_the_application_role_in_the_tenants_scope(
    app_state: AppState, cache: SemanticCache, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """The lookup is one statement (no transaction around it): the function it calls enters the tenant's
    scope as tenant sessions do, so row-level security holds the search to that tenant's rows: with the
    search's own tenant filter gone, the policy alone still hides the other tenant's entry."""
    a, b = await make_tenant(), await make_tenant()
    question = "Which floor is the library on?"
    vector = app_state.embeddings.embed_query(question)
    await cache.store(b.tenant_id, [b.tenant_id], 1, "p1", question, vector, {"answer": "floor 3"})
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


async def test_admission_searches_the_tenants_own_entries_of_the_current_version_only(
    app_state: AppState, cache: SemanticCache, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """`admit_query` with a search (migration 0011): the nearest entries of the caller's partition, only
    while the version the partition was built with is still current, and only while the tenant's cache
    is on; never another tenant's entries."""
    a, b = await make_tenant(), await make_tenant()  # no knowledge base yet: version 0
    question = "Which floor is the library on?"
    vector = app_state.embeddings.embed_query(question)
    await cache.store(a.tenant_id, [a.tenant_id], 0, "p1", question, vector, {"answer": "floor 3"})
    await cache.store(b.tenant_id, [b.tenant_id], 0, "p1", question, vector, {"answer": "floor 9"})
    plan = TenantPlan("test", 1000, None, None, 1 << 20)

    async def nearest(tenant_id: object, version: int) -> list[dict[str, object]] | None:
        asking = context(tenant_id, plan)  # type: ignore[arg-type]
        admitted = await AdmissionStore(app_state.db).admit(asking, 1, SemanticSearch(version, "p1", vector))
        return admitted.nearest

    found = await nearest(a.tenant_id, 0)
    assert found is not None and [n["response"] for n in found] == [{"answer": "floor 3"}]
    assert found[0]["similarity"] > 0.999 and 3590 < found[0]["expires_in"] <= 3600
    assert cache.match("Which floor is the library on", found, 0.95) is not None
    assert await nearest(a.tenant_id, 1) is None  # built with another version: not searched
    await set_cache_policy(app_state.db, a.tenant_id, enabled=False)
    assert await nearest(a.tenant_id, 0) is None
    await set_cache_policy(app_state.db, b.tenant_id, semantic_threshold=0.99)
    assert [n["response"] for n in await nearest(b.tenant_id, 0) or []] == [{"answer": "floor 9"}]


async def test_storing_is_one_statement_as_the_application_role_and_drops_older_versions(
    app_state: AppState, cache: SemanticCache, tenant: TenantHandle
) -> None:
    """`semantic_cache_store` (migration 0012) enters the tenant's scope like a tenant session, so
    row-level security's WITH CHECK applies to the insert; entries of older versions go with it."""
    embed = app_state.embeddings.embed_query
    await cache.store(
        tenant.tenant_id, [tenant.tenant_id], 1, "v1", "Where is the gym?", embed("Where is the gym?"), {"answer": "B1"}
    )
    vector = embed("Where is the pool?")
    async with app_state.db.admin_session() as session:
        await session.execute(
            text(
                "SELECT semantic_cache_store(:t, ARRAY[:t]::uuid[], 2, 'v2', :d, CAST(:e AS vector), "
                "'Where is the pool?', '{}', 60)"
            ),
            {"t": tenant.tenant_id, "d": len(vector), "e": vector_literal(vector)},
        )
        scope = (await session.execute(text("SELECT current_user, current_setting('app.tenant_id')"))).one()
        kept = (await session.execute(text("SELECT kb_version, partition FROM semantic_cache"))).all()
    assert scope == (app_state.db.app_role, str(tenant.tenant_id))
    assert [tuple(row) for row in kept] == [(2, "v2")]  # version 1's entry is gone
