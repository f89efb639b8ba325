"""Dense and sparse search under the documents' row-level security, on their own embedded server with
enough rows that PostgreSQL plans the HNSW scan: with most documents hidden from the reader, pgvector's
iterative scan must still return k rows, all of them readable."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from ragapi.core.access import EVERYTHING, ReaderView
from ragapi.core.database import Database, start_embedded_postgres
from ragapi.core.migrate import upgrade
from ragapi.retrieval.bm25 import term_keys
from ragapi.retrieval.chunks import dense_search, dense_search_settings, ensure_dense_index, read_hits, sparse_search
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from tests.conftest import make_settings

DOCUMENTS = 100
CHUNKS_PER_DOCUMENT = 30
PUBLIC_DOCUMENTS = 3  # 90 of 3000 chunks readable by a stranger
DIM = 384
TERM = 7  # every chunk's one sparse term


@dataclass
class Corpus:
    db: Database
    tenant: uuid.UUID
    insider: uuid.UUID  # may read every restricted document
    public: set[uuid.UUID]  # the documents the whole tenant reads

    @property
    def kb(self) -> KnowledgeBase:
        total = DOCUMENTS * CHUNKS_PER_DOCUMENT
        return KnowledgeBase(
            id=self.tenant,
            tenant_id=self.tenant,
            name="default",
            embedding_model="m",
            embedding_dim=DIM,
            chunk_count=total,
            token_count=total,
            version=1,
        )


@pytest.fixture(scope="module")
async def corpus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Corpus]:
    data_dir = tmp_path_factory.mktemp("restricted")
    url = start_embedded_postgres(data_dir / "pgdata")
    upgrade(url, "ragapi_app")
    db = Database.connect(make_settings(data_dir), url)
    tenant, insider = uuid.uuid4(), uuid.uuid4()
    documents = [uuid.uuid4() for _ in range(DOCUMENTS)]
    public = set(documents[:PUBLIC_DOCUMENTS])
    async with db.admin_session() as session:
        await ensure_dense_index(session, DIM)
        await session.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'restricted')"), {"t": tenant})
        await session.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim) "
                "VALUES (:t, :t, 'default', 'm', 384)"
            ),
            {"t": tenant},
        )
        for d in documents:
            restricted = d not in public
            await session.execute(
                text(
                    "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, "
                    "chunk_count, size_bytes, access, readers) VALUES (:d, :t, :t, 'synthetic', 'text/plain', :h, "
                    ":n, 0, CAST(:a AS jsonb), CAST(:r AS uuid[]))"
                ),
                {
                    "d": d,
                    "t": tenant,
                    "h": d.hex,
                    "n": CHUNKS_PER_DOCUMENT,
                    "a": f'{{"users": ["{insider}"]}}' if restricted else None,
                    "r": [insider] if restricted else None,
                },
            )
            await session.execute(
                text(
                    "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ord, text, title, "
                    "embedding_model, embedding_dim, embedding, sparse, token_count, term_keys) "
                    "SELECT gen_random_uuid(), :t, :t, :d, g, 'row ' || g, 'synthetic', 'm', 384, "
                    "(SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) AS x WHERE g IS NOT NULL)::vector, "
                    f"('{{{TERM}:' || (1 + random()) || '}}/1000000000')::sparsevec, 1, :keys "
                    "FROM generate_series(1, :n) AS g"
                ),
                {"t": tenant, "d": d, "n": CHUNKS_PER_DOCUMENT, "keys": term_keys(tenant, [TERM])},
            )
        await session.execute(
            text("INSERT INTO sparse_terms (tenant_id, knowledge_base_id, term, df) VALUES (:t, :t, :term, 10)"),
            {"t": tenant, "term": TERM},
        )
        await session.execute(text("ANALYZE chunks"))
    yield Corpus(db, tenant, insider, public)
    await db.dispose()


BUDGET = 20_000
QUERY = [0.01 * ((i % 7) - 3) for i in range(DIM)]
# as in test_chunks: take the exact sort away so the HNSW path runs at this size
FORCED = {"enable_sort": "off", "enable_seqscan": "off"}


async def document_of(corpus: Corpus, chunk_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with corpus.db.tenant_session(corpus.tenant, view=EVERYTHING) as session:
        rows = await session.execute(
            text("SELECT DISTINCT document_id FROM chunks WHERE id = ANY(:ids)"), {"ids": chunk_ids}
        )
        return set(rows.scalars())


@pytest.mark.parametrize("k", [5, 40])
async def test_dense_search_returns_k_readable_rows_when_most_are_hidden(corpus: Corpus, k: int) -> None:
    stranger = ReaderView.of(uuid.uuid4(), version=1)
    local = dense_search_settings(40, k) | FORCED
    async with corpus.db.tenant_session(corpus.tenant, local=local, view=stranger) as session:
        found = await dense_search(session, corpus.tenant, corpus.kb, QUERY, k, {})
        hits = await read_hits(session, corpus.tenant, found, {})
    assert len(found) == k and len(hits) == k
    assert await document_of(corpus, [c.key for c in found]) <= corpus.public  # type: ignore[misc]
    async with corpus.db.tenant_session(corpus.tenant, local=local, view=ReaderView.of(corpus.insider)) as session:
        insider = await dense_search(session, corpus.tenant, corpus.kb, QUERY, k, {})
    assert len(insider) == k
    assert not await document_of(corpus, [c.key for c in insider]) <= corpus.public  # type: ignore[misc]


async def test_sparse_search_and_reads_see_only_readable_rows(corpus: Corpus) -> None:
    stranger = ReaderView.of(uuid.uuid4(), version=1)
    async with corpus.db.tenant_session(corpus.tenant, view=stranger) as session:
        found = await sparse_search(session, corpus.tenant, corpus.kb, Counter({TERM: 1}), 200, {}, BUDGET)
        visible = (await session.execute(text("SELECT count(*) FROM chunks"))).scalar_one()
        documents = (await session.execute(text("SELECT count(*) FROM documents"))).scalar_one()
    assert len(found) == PUBLIC_DOCUMENTS * CHUNKS_PER_DOCUMENT == visible
    assert documents == PUBLIC_DOCUMENTS
    assert await document_of(corpus, [c.key for c in found]) == corpus.public  # type: ignore[misc]
    # the insider's view and the view of everything read past the restriction
    for view in (ReaderView.of(corpus.insider), EVERYTHING):
        async with corpus.db.tenant_session(corpus.tenant, view=view) as session:
            assert (await session.execute(text("SELECT count(*) FROM documents"))).scalar_one() == DOCUMENTS


async def test_bm25_through_the_term_index_sees_only_readable_rows(corpus: Corpus) -> None:
    """The term index search runs as the owner (migration 0020): it applies the permission policy itself."""
    views = {"stranger": ReaderView.of(uuid.uuid4(), version=1), "insider": ReaderView.of(corpus.insider)}
    found = {}
    for name, view in views.items():
        async with corpus.db.tenant_session(corpus.tenant, view=view) as session:
            found[name] = await sparse_search(
                session,
                corpus.tenant,
                corpus.kb,
                Counter({TERM: 1}),
                DOCUMENTS * CHUNKS_PER_DOCUMENT,
                {},
                BUDGET,
                index_share=1.0,
            )
    assert len(found["stranger"]) == PUBLIC_DOCUMENTS * CHUNKS_PER_DOCUMENT
    assert await document_of(corpus, [c.key for c in found["stranger"]]) == corpus.public  # type: ignore[misc]
    assert len(found["insider"]) == DOCUMENTS * CHUNKS_PER_DOCUMENT


async def test_an_unset_view_reads_tenant_wide_rows_only(corpus: Corpus) -> None:
    """The policy fails closed: a transaction that never set `app.readers` reads no restricted row."""
    async with corpus.db.tenant_session(corpus.tenant) as session:
        await session.execute(text("SELECT set_config('app.readers', '', true)"))
        assert (await session.execute(text("SELECT count(*) FROM documents"))).scalar_one() == PUBLIC_DOCUMENTS
    async with corpus.db.engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT set_config('role', 'ragapi_app', true), set_config('app.tenant_id', :t, true)"),
            {"t": str(corpus.tenant)},
        )
        assert (await conn.execute(text("SELECT count(*) FROM chunks"))).scalar_one() == (
            PUBLIC_DOCUMENTS * CHUNKS_PER_DOCUMENT
        )
