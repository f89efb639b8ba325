from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import TenantHandle


async def ingest_texts(client: httpx.AsyncClient, tenant: TenantHandle, *texts: str, **fields: Any) -> list[str]:
    documents = [{"text": t, **fields} for t in texts]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": documents})
    assert response.status_code == 200, response.text
    return [d["document_id"] for d in response.json()["documents"]]


def sse_events(body: str) -> list[tuple[str, Any]]:
    """Parse an SSE body into (event, data) pairs, skipping comments and pings."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    assert body["request_id"] == response.headers["x-request-id"]
    return body


PASSWORD = "correct horse battery staple"


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/v1/auth/login", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
