"""Document metadata is bounded (keys and bytes, configurable) on every way in, and stored once on the
document: its chunks keep only their own keys, while filters on either keep working through an index."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import TenantHandle
from tests.documents import pdf_bytes


async def test_metadata_over_its_limits_is_refused_everywhere(
    client: httpx.AsyncClient, tenant: TenantHandle, settings: Settings
) -> None:
    many = {f"k{n}": n for n in range(settings.max_metadata_keys + 1)}
    large = {"blob": "x" * settings.max_metadata_bytes}
    doc = (await ingest_texts(client, tenant, "Metadata limits."))[0]
    for metadata, setting in ((many, "MAX_METADATA_KEYS"), (large, "MAX_METADATA_BYTES")):
        as_json = await client.post(
            "/v1/ingest", headers=tenant.headers, json={"documents": [{"text": "t", "metadata": metadata}]}
        )
        assert setting in assert_problem(as_json, 422)["detail"]
        as_form = await client.post(
            "/v1/ingest",
            headers=tenant.headers,
            files=[("files", ("a.txt", b"text", "text/plain"))],
            data={"metadata": json.dumps(metadata)},
        )
        assert setting in assert_problem(as_form, 422)["detail"]
        patched = await client.patch(f"/v1/documents/{doc}", headers=tenant.headers, json={"metadata": metadata})
        assert setting in assert_problem(patched, 422)["detail"]
    at_limit = {"blob": "x" * (settings.max_metadata_bytes - 20)}
    assert (await client.patch(f"/v1/documents/{doc}", headers=tenant.headers, json={"metadata": at_limit})).is_success


async def chunk_keys(db: Database, document_id: str) -> set[str]:
    async with db.admin_session() as session:
        rows = await session.execute(
            text("SELECT DISTINCT jsonb_object_keys(metadata) FROM chunks WHERE document_id = :d"), {"d": document_id}
        )
        return set(rows.scalars())


async def cited(client: httpx.AsyncClient, tenant: TenantHandle, filters: dict[str, object]) -> set[str]:
    response = await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "quarterly travel budget", "filters": filters, "top_k": 10}
    )
    assert response.status_code == 200, response.text
    return {c["document_id"] for c in response.json()["citations"]}


async def test_metadata_is_stored_once_and_filters_still_match_it(
    client: httpx.AsyncClient, app_state: AppState, tenant: TenantHandle
) -> None:
    blob = "y" * 8000
    text_doc = (
        await ingest_texts(
            client,
            tenant,
            " ".join(f"Quarterly travel budget note {n}: flights need approval." for n in range(200)),
            metadata={"team": "hr", "blob": blob},
        )
    )[0]
    pdf = pdf_bytes(["Travel budget, page one.", "The quarterly travel budget is 10k."], title="Budget")
    upload = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        files=[("files", ("budget.pdf", pdf, "application/pdf"))],
        data={"metadata": '{"team": "finance"}'},
    )
    pdf_doc = upload.json()["documents"][0]["document_id"]
    async with app_state.db.admin_session() as session:
        chunks = (
            await session.execute(text("SELECT count(*) FROM chunks WHERE document_id = :d"), {"d": text_doc})
        ).scalar_one()
    assert chunks > 5
    assert await chunk_keys(app_state.db, text_doc) == set()  # nothing of the document's copied into its chunks
    assert await chunk_keys(app_state.db, pdf_doc) == {"page"}

    assert await cited(client, tenant, {"team": "hr"}) == {text_doc}
    assert await cited(client, tenant, {"team": ["hr", "finance"]}) == {text_doc, pdf_doc}
    assert await cited(client, tenant, {"team": "finance", "page": 2}) == {pdf_doc}
    assert await cited(client, tenant, {"source": "budget.pdf"}) == {pdf_doc}
    answer = await client.post(
        "/v1/query", headers=tenant.headers, json={"query": "quarterly travel budget 10k", "filters": {"page": 2}}
    )
    assert answer.json()["citations"][0]["page"] == 2

    moved = await client.patch(f"/v1/documents/{text_doc}", headers=tenant.headers, json={"metadata": {"team": "ops"}})
    assert moved.json()["metadata"] == {"team": "ops"}
    assert await cited(client, tenant, {"team": "hr"}) == set()
    assert await cited(client, tenant, {"team": "ops"}) == {text_doc}


async def test_a_filter_finds_documents_through_the_metadata_index(app_state: AppState, tenant: TenantHandle) -> None:
    """Under row-level security too: the application role's filter reads the GIN index on documents'
    metadata (through `documents_matching`), and chunks look their documents up in a hashed set."""
    from ragapi.retrieval.filters import filter_sql, validate_filters

    db = app_state.db
    async with db.admin_session() as session:
        await session.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim) "
                "VALUES (:t, :t, 'default', 'm', 3) ON CONFLICT DO NOTHING"
            ),
            {"t": tenant.tenant_id},
        )
        await session.execute(
            text(
                "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, metadata, "
                "chunk_count, size_bytes) SELECT gen_random_uuid(), :t, :t, 'd', 'text/plain', md5(n::text), "
                "jsonb_build_object('team', CASE WHEN n = 7 THEN 'rare' ELSE 'common' END, 'n', n), 0, 1 "
                "FROM generate_series(1, 3000) AS n"
            ),
            {"t": tenant.tenant_id},
        )
        await session.execute(text("ANALYZE documents"))

    async def index_scans() -> int:
        async with db.admin_session() as session:
            await session.execute(text("SELECT pg_stat_force_next_flush()"))
        async with db.admin_session() as session:
            return int(
                (
                    await session.execute(
                        text("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'documents_metadata'")
                    )
                ).scalar_one()
            )

    before = await index_scans()
    where, params = filter_sql(validate_filters({"team": "rare"}))
    async with db.tenant_session(tenant.tenant_id) as session:
        found = (
            await session.execute(text("SELECT count(*) FROM documents_matching(CAST(:f0 AS jsonb[]))"), params)
        ).scalar_one()
        await session.execute(text("SELECT pg_stat_force_next_flush()"))
        plan = (
            await session.execute(
                text(f"EXPLAIN SELECT c.id FROM chunks c WHERE c.tenant_id = :t{where}"),
                {"t": tenant.tenant_id, **params},
            )
        ).scalars()
        assert "hashed SubPlan" in "\n".join(plan)
    assert found == 1
    assert await index_scans() > before
