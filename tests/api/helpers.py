from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from asyncpg.connection import Connection
from asyncpg.prepared_stmt import PreparedStatement

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


def iter_sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a streaming response, each as soon as it has arrived."""
    buffer = ""
    for text in response.iter_text():
        buffer += text.replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield from sse_events(block + "\n\n")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"] == f"{response.request.url.scheme}://{response.request.url.netloc.decode()}/problems/" + (
        body["title"].lower().replace(" ", "-")
    )  # a page of the server that answered (api.problem_pages)
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


_round_trips: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("round_trips", default=None)


@contextmanager
def database_round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every statement and transaction command sent to PostgreSQL from this context (the request
    under test and the tasks it starts; not background tasks such as the ingestion worker or the log
    writer). Statement preparation is left out: it happens once per pooled connection."""
    seen: list[str] = []

    def counted(original: Any, kind: str) -> Any:
        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            into = _round_trips.get()
            if into is not None:
                statement = self.get_query() if kind == "execute" else str(args[0] if args else "")
                into.append(f"{kind}: {' '.join(statement.split())[:400]}")
            return await original(self, *args, **kwargs)

        return call

    monkeypatch.setattr(Connection, "execute", counted(Connection.execute, "simple"))  # BEGIN, COMMIT
    monkeypatch.setattr(Connection, "fetchrow", counted(Connection.fetchrow, "simple"))  # Database.fetch_row
    monkeypatch.setattr(Connection, "fetch", counted(Connection.fetch, "simple"))  # Database.fetch
    bind = "_PreparedStatement__bind_execute"
    monkeypatch.setattr(PreparedStatement, bind, counted(getattr(PreparedStatement, bind), "execute"))
    token = _round_trips.set(seen)
    try:
        yield seen
    finally:
        _round_trips.reset(token)


@contextmanager
def tasks_started() -> Iterator[list[str]]:
    """Names of the coroutines the event loop starts as tasks in this context: each task is turns of a
    loop that, under load, are each a wait behind other requests' work."""
    loop = asyncio.get_running_loop()
    started: list[str] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        started.append(getattr(coro, "__qualname__", repr(coro)))
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield started
    finally:
        loop.set_task_factory(previous)


def served_tenant(server: Any, name: str, documents: dict[str, list[str]]) -> dict[str, str]:
    """A tenant of a served API (`tests.conftest.Served`) made by its CLI, with `documents` ingested
    over HTTP into knowledge bases by name (`default`: the tenant's default): {tenant_id, api_key}."""
    tenant: dict[str, str] = json.loads(server.cli("tenants", "create", name, "--json"))
    headers = {"X-API-Key": tenant["api_key"]}
    for kb, texts in documents.items():
        if kb != "default":
            made = httpx.post(server.url + "/v1/knowledge-bases", headers=headers, json={"name": kb})
            assert made.status_code == 201, made.text
        body = {"documents": [{"text": t} for t in texts]}
        params = {"wait": "true", **({"knowledge_base": kb} if kb != "default" else {})}
        ingested = httpx.post(server.url + "/v1/ingest", params=params, headers=headers, json=body)
        assert ingested.status_code == 200, ingested.text
    return tenant
