"""BM25 through the term index (migration 0020): the same ranking as the exact scan, every write visible to
the next query, and the SECURITY DEFINER search confined to the transaction's own tenant."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.ingestion.chunk_store import FOLD_EVERY
from ragapi.ingestion.documents import delete_document
from ragapi.ingestion.pipeline import IngestItem
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import term_counts, term_keys, to_sparsevec
from ragapi.retrieval.chunks import Candidate, document_frequencies, exact_sparse_search, rarest_terms, sparse_search
from ragapi.retrieval.filters import Filters
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from tests.conftest import TenantHandle

BUDGET = 20_000
VOCABULARY = [f"{a}{b}" for a in ("zor", "mel", "tak", "vun", "pri", "gos") for b in ("bax", "dite", "lume", "rond")]


async def kb_of(db: Database, tenant_id: uuid.UUID) -> KnowledgeBase:
    async with db.tenant_session(tenant_id) as session:
        kb = await knowledge_bases.get(session, tenant_id)
    assert kb is not None
    return kb


async def bm25(
    db: Database, tenant_id: uuid.UUID, query: str, budget: int = BUDGET, k: int = 10, filters: Filters | None = None
) -> list[Candidate]:
    """Through the term index, however small the knowledge base (index_share=1)."""
    kb = await kb_of(db, tenant_id)
    async with db.tenant_session(tenant_id) as session:
        return await sparse_search(
            session, tenant_id, kb, term_counts(query), k, filters or {}, budget, index_share=1.0
        )


async def exact(
    db: Database, tenant_id: uuid.UUID, query: str, k: int = 10, filters: Filters | None = None
) -> list[Candidate]:
    kb = await kb_of(db, tenant_id)
    async with db.tenant_session(tenant_id) as session:
        return await exact_sparse_search(session, tenant_id, kb, term_counts(query), k, filters or {})


def ranked(candidates: list[Candidate]) -> list[tuple[float, str]]:
    """Scores in order, ties in id order (either side may return tied chunks in any order)."""
    return sorted((-round(c.score, 4), str(c.key)) for c in candidates)


async def test_the_term_index_ranks_as_the_exact_scan(app_state: AppState, tenant: TenantHandle) -> None:
    rng = random.Random(7)
    texts = [" ".join(rng.choices(VOCABULARY, weights=range(1, 25), k=rng.randint(5, 30))) for _ in range(80)]
    await app_state.pipeline.run(tenant.tenant_id, [IngestItem(t.encode(), f"{n}.txt") for n, t in enumerate(texts)])
    for _ in range(25):
        query = " ".join(rng.sample(VOCABULARY, rng.randint(1, 5)))
        expected = await exact(app_state.db, tenant.tenant_id, query, k=100)  # all matches: no tie is cut
        assert expected, query
        assert ranked(await bm25(app_state.db, tenant.tenant_id, query, k=100)) == ranked(expected), query


async def test_under_metadata_filters_the_term_index_ranks_as_the_exact_scan(
    app_state: AppState, tenant: TenantHandle
) -> None:
    rng = random.Random(11)
    teams = ("red", "green", "blue")
    items = [
        IngestItem(
            " ".join(rng.choices(VOCABULARY, weights=range(1, 25), k=rng.randint(5, 30))).encode(),
            f"{n}.txt",
            metadata={"team": rng.choice(teams)},
        )
        for n in range(80)
    ]
    await app_state.pipeline.run(tenant.tenant_id, items)
    for filters in ({"team": "red"}, {"team": ["green", "blue"]}, {"source": ["3.txt", "5.txt", "8.txt"]}):
        for _ in range(8):
            query = " ".join(rng.sample(VOCABULARY, rng.randint(1, 5)))
            expected = await exact(app_state.db, tenant.tenant_id, query, k=100, filters=filters)
            found = await bm25(app_state.db, tenant.tenant_id, query, k=100, filters=filters)
            assert ranked(found) == ranked(expected), (query, filters)


async def test_a_selective_filter_is_not_left_short_by_the_terms_the_budget_left_out(
    app_state: AppState, tenant: TenantHandle
) -> None:
    """The rarest term's chunks all fail the filter: the chunk that passes it with the common term alone
    is still found (the exact scan decides when the candidates leave fewer than k)."""
    items = [IngestItem(f"common words here, copy {n}".encode(), f"c{n}.txt") for n in range(30)]
    items += [IngestItem(b"a quillfeather alone", "rare.txt")]
    await app_state.pipeline.run(tenant.tenant_id, items)
    found = await bm25(app_state.db, tenant.tenant_id, "quillfeather common", budget=5, filters={"source": "c7.txt"})
    assert len(found) == 1
    assert found == await exact(app_state.db, tenant.tenant_id, "quillfeather common", filters={"source": "c7.txt"})


async def test_a_small_budget_scores_the_chunks_of_the_rarest_terms(app_state: AppState, tenant: TenantHandle) -> None:
    """Only the rarest term's chunks are candidates when the next would exceed the budget; a chunk with
    just the common term is not found, one with both ranks first."""
    items = [IngestItem(f"common words here, copy {n}".encode(), f"c{n}.txt") for n in range(30)]
    items += [IngestItem(b"the rare quillfeather and common words", "both.txt")]
    items += [IngestItem(b"a quillfeather alone", "rare.txt")]
    await app_state.pipeline.run(tenant.tenant_id, items)
    found = await bm25(app_state.db, tenant.tenant_id, "quillfeather common", budget=5, k=40)
    assert len(found) == 2
    assert len(await bm25(app_state.db, tenant.tenant_id, "quillfeather common", k=40)) == 32


def test_rarest_terms_fill_the_budget_rarest_first() -> None:
    assert rarest_terms({1: 50, 2: 5, 3: 10}, 15) == [2, 3]
    assert rarest_terms({1: 50, 2: 5, 3: 10}, 100) == [2, 3, 1]
    assert rarest_terms({1: 50, 2: 500}, 10) == [1]  # at least the rarest, whatever its size


async def test_writes_replaces_and_deletes_are_visible_to_the_next_query(
    app_state: AppState, tenant: TenantHandle
) -> None:
    db, tid = app_state.db, tenant.tenant_id
    await app_state.pipeline.run(tid, [IngestItem(b"filler text about nothing", "f.txt")])
    await app_state.pipeline.run(
        tid, [IngestItem(b"The zorblax manual, first edition.", "m.txt", external_id="manual")]
    )
    assert len(await bm25(db, tid, "zorblax")) == 1
    report = await app_state.pipeline.run(
        tid, [IngestItem(b"The quintessa manual, second edition.", "m.txt", external_id="manual")]
    )
    assert report.results[0].status == "replaced"
    document = report.results[0].document_id
    assert document is not None
    assert await bm25(db, tid, "zorblax") == []
    assert len(await bm25(db, tid, "quintessa")) == 1
    await delete_document(db, tid, document, app_state.indexes)
    assert await bm25(db, tid, "quintessa") == []
    assert await document_frequencies_of(db, tid) == await counted_from_chunks(db, tid)


async def test_document_frequencies_stay_exact_through_folds(app_state: AppState, tenant: TenantHandle) -> None:
    """Many writes, replaces and deletes: pending changes are folded every FOLD_EVERY, and the frequencies
    a query reads always equal a count over the chunks themselves."""
    db, tid = app_state.db, tenant.tenant_id
    rng = random.Random(3)
    ids = []
    for n in range(2 * FOLD_EVERY):
        words = " ".join(rng.choices(VOCABULARY, k=rng.randint(3, 12)))
        report = await app_state.pipeline.run(
            tid, [IngestItem(f"{words} {n}".encode(), f"{n}.txt", external_id=f"d{n % 9}")]
        )
        ids.append(report.results[0].document_id)
        if n % 5 == 4:
            await delete_document(db, tid, ids[rng.randrange(len(ids))], app_state.indexes)
        assert await document_frequencies_of(db, tid) == await counted_from_chunks(db, tid), n
    async with db.tenant_session(tid) as session:
        pending = (await session.execute(text("SELECT count(*) FROM sparse_term_deltas"))).scalar_one()
    assert pending < FOLD_EVERY


async def document_frequencies_of(db: Database, tenant_id: uuid.UUID) -> dict[int, int]:
    """What a query reads, for every term the tenant ever had."""
    async with db.tenant_session(tenant_id) as session:
        terms = (
            (
                await session.execute(
                    text("SELECT term FROM sparse_terms UNION SELECT unnest(terms) FROM sparse_term_deltas")
                )
            )
            .scalars()
            .all()
        )
        kb = await knowledge_bases.get(session, tenant_id)
        assert kb is not None
        return await document_frequencies(session, tenant_id, kb, Counter(terms))


async def counted_from_chunks(db: Database, tenant_id: uuid.UUID) -> dict[int, int]:
    async with db.tenant_session(tenant_id) as session:
        rows = (
            await session.execute(
                text("SELECT k & 4294967295 AS term, count(*) AS df FROM chunks, unnest(term_keys) AS k GROUP BY 1")
            )
        ).all()
    return {r.term: r.df for r in rows}


# --- isolation: the search runs as the owner, so it must enforce the tenant itself ------------------------------


async def call(db: Database, scope: uuid.UUID | None, kb: uuid.UUID, query: str) -> list[uuid.UUID]:
    """`bm25_candidates` as the application role, in `scope`'s transaction (None: no tenant set)."""
    terms = term_counts(query)
    statement = text("SELECT id FROM bm25_candidates(:kb, CAST(:keys AS bigint[]), CAST(:q AS sparsevec), 100, 1000)")
    params = {"kb": kb, "keys": term_keys(kb, sorted(terms)), "q": to_sparsevec(dict.fromkeys(terms, 1.0))}
    if scope is not None:
        async with db.tenant_session(scope) as session:
            return [r.id for r in (await session.execute(statement, params)).all()]
    async with db.admin_session() as session:
        await session.execute(text("SELECT set_config('role', :r, true)"), {"r": db.app_role})
        return [r.id for r in (await session.execute(statement, params)).all()]


async def owners(db: Database, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with db.admin_session() as session:
        rows = (
            await session.execute(text("SELECT DISTINCT tenant_id FROM chunks WHERE id = ANY(:ids)"), {"ids": ids})
        ).all()
    return {r.tenant_id for r in rows}


@pytest.fixture
async def two(app_state: AppState, make_tenant) -> tuple[TenantHandle, TenantHandle]:  # type: ignore[no-untyped-def]
    a, b = await make_tenant("bm25-a"), await make_tenant("bm25-b")
    for handle, word in ((a, "aardvark"), (b, "bumblebee")):
        await app_state.pipeline.run(
            handle.tenant_id,
            [IngestItem(f"shared secret {word} number {n}".encode(), f"{n}.txt") for n in range(5)],
        )
    return a, b


async def test_the_search_never_reads_another_tenant(
    app_state: AppState, two: tuple[TenantHandle, TenantHandle]
) -> None:
    db = app_state.db
    a, b = (t.tenant_id for t in two)
    assert await owners(db, await call(db, a, a, "shared secret")) == {a}
    assert await call(db, a, b, "shared secret bumblebee") == []  # b's knowledge base, a's transaction
    assert await call(db, None, a, "shared secret") == []  # no tenant in the transaction
    # the owner's own statement sees both: the rows exist, the function hid them
    assert await owners(db, await call(db, b, b, "shared secret")) == {b}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.sampled_from(["a", "b", "other"]),
            st.sampled_from(["shared secret", "aardvark", "bumblebee", "number 3 aardvark bumblebee", "secret"]),
        ),
        min_size=1,
        max_size=6,
    )
)
async def test_no_call_returns_rows_of_a_tenant_other_than_the_transactions(
    app_state: AppState, two: tuple[TenantHandle, TenantHandle], calls: list[tuple[str | None, str, str]]
) -> None:
    db = app_state.db
    tenants = {"a": two[0].tenant_id, "b": two[1].tenant_id, "other": uuid.uuid4()}
    for scope, kb, query in calls:
        found = await call(db, tenants[scope] if scope else None, tenants[kb], query)
        if scope is None or scope != kb:
            assert found == []
        else:
            own = {"shared", "secret", "number", {"a": "aardvark", "b": "bumblebee"}[scope]}
            assert await owners(db, found) == ({tenants[scope]} if own & set(query.split()) else set())


def test_term_keys_are_scoped_to_the_knowledge_base() -> None:
    a, b = uuid.UUID(int=1 << 96), uuid.UUID(int=2 << 96)
    assert term_keys(a, [7]) != term_keys(b, [7])
    assert [k & 0xFFFFFFFF for k in term_keys(a, [7, 9])] == [7, 9]
    assert Counter(term_keys(a, [7, 7])) == Counter({term_keys(a, [7])[0]: 2})
