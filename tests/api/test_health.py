from __future__ import annotations

import httpx


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    checks = ready.json()["checks"]
    assert ready.status_code == 200 and set(checks) >= {"database", "migrations", "model"}
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())


async def test_request_id_is_echoed_or_minted(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
    assert given.headers["x-request-id"] == "abc-12345678"
    minted = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert minted.headers["x-request-id"] != "bad id with spaces" and len(minted.headers["x-request-id"]) == 32


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/query", "/v1/ingest", "/v1/ingest/jobs/{job_id}/events", "/v1/documents", "/v1/rag/invoke"} <= set(
        spec["paths"]
    )
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
