"""Two tenants, every route: neither can read, list, query or delete the other's data (REST and /v1/rag)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.helpers import assert_problem, ingest_texts
from tests.conftest import TenantHandle

SECRET_A = "Project Nightingale launches on 3 March with a budget of 4.2 million."
SECRET_B = "Project Kestrel is cancelled; its staff move to the Berlin office."


@pytest.fixture
async def pair(client: httpx.AsyncClient, make_tenant) -> tuple[TenantHandle, TenantHandle, str, str, str]:  # type: ignore[no-untyped-def]
    a, b = await make_tenant(), await make_tenant()
    (doc_a,) = await ingest_texts(client, a, SECRET_A)
    (doc_b,) = await ingest_texts(client, b, SECRET_B)
    upload = await client.post(
        "/v1/ingest?wait=true", headers=a.headers, json={"documents": [{"text": "A second note."}]}
    )
    return a, b, doc_a, doc_b, upload.json()["job_id"]


async def test_documents_and_jobs_are_invisible_across_tenants(client: httpx.AsyncClient, pair) -> None:  # type: ignore[no-untyped-def]
    a, b, doc_a, doc_b, job_a = pair
    listed_b = (await client.get("/v1/documents", headers=b.headers, params={"limit": 100})).json()["items"]
    assert [d["document_id"] for d in listed_b] == [doc_b]
    assert_problem(await client.get(f"/v1/documents/{doc_a}", headers=b.headers), 404)
    assert_problem(await client.delete(f"/v1/documents/{doc_a}", headers=b.headers), 404)
    assert_problem(await client.get(f"/v1/ingest/jobs/{job_a}", headers=b.headers), 404)
    assert (await client.get(f"/v1/documents/{doc_a}", headers=a.headers)).status_code == 200  # still there


async def test_queries_never_cite_the_other_tenant(client: httpx.AsyncClient, pair) -> None:  # type: ignore[no-untyped-def]
    a, b, doc_a, doc_b, _ = pair
    docs_a = {d["document_id"] for d in (await client.get("/v1/documents", headers=a.headers)).json()["items"]}
    assert doc_a in docs_a and doc_b not in docs_a
    for query in ["Project Nightingale launch budget", "When does Nightingale launch?", "Project Kestrel"]:
        for tenant, own in ((a, docs_a), (b, {doc_b})):
            body = (await client.post("/v1/query", headers=tenant.headers, json={"query": query, "top_k": 10})).json()
            cited = {c["document_id"] for c in body["citations"]}
            assert cited and cited <= own
            assert (SECRET_B in json.dumps(body)) == (tenant is b)
            assert ("Nightingale launches" in json.dumps(body)) == (tenant is a)
    # filtering on the other tenant's document id finds nothing
    body = (
        await client.post(
            "/v1/query", headers=b.headers, json={"query": "Nightingale", "filters": {"document_id": doc_a}}
        )
    ).json()
    assert body["citations"] == []


async def test_langserve_routes_are_tenant_scoped(client: httpx.AsyncClient, pair) -> None:  # type: ignore[no-untyped-def]
    a, b, doc_a, doc_b, _ = pair
    spoof = {"configurable": {"tenant_id": str(a.tenant_id)}}
    invoke = await client.post(
        "/v1/rag/invoke", headers=b.headers, json={"input": {"query": "Project Nightingale"}, "config": spoof}
    )
    assert invoke.status_code in (200, 422)
    if invoke.status_code == 200:
        assert {c["document_id"] for c in invoke.json()["output"]["citations"]} <= {doc_b}
    plain = await client.post("/v1/rag/invoke", headers=b.headers, json={"input": {"query": "Project Nightingale"}})
    assert plain.status_code == 200
    assert {c["document_id"] for c in plain.json()["output"]["citations"]} == {doc_b}
    batch = await client.post(
        "/v1/rag/batch", headers=b.headers, json={"inputs": [{"query": "Nightingale"}, {"query": "budget"}]}
    )
    assert batch.status_code == 200
    for output in batch.json()["output"]:
        assert SECRET_A not in json.dumps(output)
    stream = await client.post("/v1/rag/stream", headers=b.headers, json={"input": {"query": "Nightingale budget"}})
    assert stream.status_code == 200 and "Kestrel" in stream.text and "Nightingale launches" not in stream.text
    events = await client.post(
        "/v1/rag/stream_events", headers=b.headers, json={"input": {"query": "Nightingale budget"}}
    )
    assert events.status_code == 200 and "Nightingale launches" not in events.text


@pytest.mark.parametrize("path", ["/v1/rag/invoke", "/v1/rag/batch", "/v1/rag/stream", "/v1/rag/stream_events"])
async def test_langserve_requires_a_valid_key(client: httpx.AsyncClient, path: str) -> None:
    body = {"inputs": [{"query": "x"}]} if path.endswith("batch") else {"input": {"query": "x"}}
    assert_problem(await client.post(path, json=body), 401)
    assert_problem(await client.post(path, json=body, headers={"X-API-Key": "rag_00000000_" + "x" * 43}), 401)


async def test_rest_requires_a_valid_key(client: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/v1/documents"), ("POST", "/v1/query"), ("POST", "/v1/ingest?wait=true")]:
        response = await client.request(method, path, json={"query": "x"})
        assert_problem(response, 401)
        assert "X-API-Key" in response.json()["detail"]
    bearer_bad = await client.get("/v1/documents", headers={"Authorization": "Bearer nope"})
    assert_problem(bearer_bad, 401)


async def test_bearer_header_works_like_x_api_key(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.get("/v1/documents", headers={"Authorization": f"Bearer {tenant.api_key}"})
    assert response.status_code == 200


async def test_langserve_input_is_validated(client: httpx.AsyncClient, tenant: TenantHandle, settings) -> None:  # type: ignore[no-untyped-def]
    too_long = {"input": {"query": "x" * (settings.max_query_chars + 1)}}
    assert (await client.post("/v1/rag/invoke", headers=tenant.headers, json=too_long)).status_code == 422
    bad_filter = {"input": {"query": "x", "filters": {"bad key!": 1}}}
    assert_problem(await client.post("/v1/rag/invoke", headers=tenant.headers, json=bad_filter), 422)
    schema = (await client.get("/v1/rag/input_schema", headers=tenant.headers)).json()
    assert set(schema["properties"]) == {"query", "knowledge_bases", "top_k", "filters", "cache", "chat_history"}
