from __future__ import annotations

import uuid

import httpx

from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import MakeTenant, TenantHandle


async def test_cursor_pagination_walks_every_document_once(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    ids = set(await ingest_texts(client, tenant, *[f"Document number {i}." for i in range(7)]))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/documents", headers=tenant.headers, params=params)).json()
        seen += [d["document_id"] for d in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids


async def test_list_limits_and_bad_cursor(client: httpx.AsyncClient, tenant: TenantHandle, settings) -> None:  # type: ignore[no-untyped-def]
    assert_problem(
        await client.get("/v1/documents", headers=tenant.headers, params={"limit": settings.page_size_max + 1}), 422
    )
    assert_problem(await client.get("/v1/documents", headers=tenant.headers, params={"limit": 0}), 422)
    assert_problem(await client.get("/v1/documents", headers=tenant.headers, params={"cursor": "!!garbage"}), 422)


async def test_delete_removes_document_from_answers(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    (doc_id,) = await ingest_texts(client, tenant, "The launch code word is PELICAN.")
    before = await client.post("/v1/query", headers=tenant.headers, json={"query": "launch code word"})
    assert before.json()["citations"][0]["document_id"] == doc_id
    assert (await client.delete(f"/v1/documents/{doc_id}", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get(f"/v1/documents/{doc_id}", headers=tenant.headers), 404)
    assert_problem(await client.delete(f"/v1/documents/{doc_id}", headers=tenant.headers), 404)
    after = await client.post("/v1/query", headers=tenant.headers, json={"query": "launch code word"})
    assert all(c["document_id"] != doc_id for c in after.json()["citations"])


async def test_unknown_ids(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    assert_problem(await client.get(f"/v1/documents/{uuid.uuid4()}", headers=tenant.headers), 404)
    assert_problem(await client.get(f"/v1/ingest/jobs/{uuid.uuid4()}", headers=tenant.headers), 404)
    assert_problem(await client.get("/v1/documents/not-a-uuid", headers=tenant.headers), 422)


async def test_metadata_patch_moves_the_document_between_filters_at_once(
    client: httpx.AsyncClient, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    (doc_id,) = await ingest_texts(client, tenant, "The offsite is in Porto in May.", metadata={"team": "ops"})
    ask = {"query": "where is the offsite", "filters": {"team": "ops"}}
    first = (await client.post("/v1/query", headers=tenant.headers, json=ask)).json()
    assert [c["document_id"] for c in first["citations"]] == [doc_id]
    patched = await client.patch(f"/v1/documents/{doc_id}", headers=tenant.headers, json={"metadata": {"team": "hr"}})
    assert patched.status_code == 200 and patched.json()["metadata"] == {"team": "hr"}
    stale = (await client.post("/v1/query", headers=tenant.headers, json=ask)).json()
    assert stale["citations"] == [], "the cached answer for the old filter is not served"
    moved = (await client.post("/v1/query", headers=tenant.headers, json={**ask, "filters": {"team": "hr"}})).json()
    assert [c["document_id"] for c in moved["citations"]] == [doc_id]

    bad = await client.patch(f"/v1/documents/{doc_id}", headers=tenant.headers, json={"metadata": {}, "title": "x"})
    assert_problem(bad, 422)
    other = await make_tenant()
    assert_problem(await client.patch(f"/v1/documents/{doc_id}", headers=other.headers, json={"metadata": {}}), 404)


async def test_search_finds_documents_by_title_or_source_only(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    documents = [
        {"title": "Vacation policy", "text": "Twenty-five days."},
        {"title": "Expenses", "text": "Receipts above 50 euros.", "url": None},
        {"title": "100% remote_work", "text": "Vacation is not mentioned in the title here."},
    ]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": documents})
    assert response.status_code == 200, response.text

    async def titles(search: str) -> list[str]:
        page = await client.get("/v1/documents", headers=tenant.headers, params={"search": search})
        assert page.status_code == 200, page.text
        return sorted(d["title"] for d in page.json()["items"])

    assert await titles("VACATION") == ["Vacation policy"]  # case-insensitive; the text is not searched
    assert await titles("100%") == ["100% remote_work"]  # % and _ are characters, not wildcards
    assert await titles("n_p") == []  # as a wildcard, "_" would match the space of "Vacation policy"
    assert await titles("%") == ["100% remote_work"]
    assert_problem(await client.get("/v1/documents", headers=tenant.headers, params={"search": "x" * 201}), 422)
