"""Celery on a real RabbitMQ with real `ragapi worker` processes: kill -9 the worker in the middle of a
1,000-document job, start another, and every document is indexed exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.ingestion import jobs, monitor
from ragapi.ingestion.dispatch import CeleryDispatcher
from ragapi.ingestion.models import IngestJob
from ragapi.ingestion.pipeline import IngestItem
from ragapi.tenants.service import create_tenant
from tests.api.helpers import assert_problem
from tests.conftest import TenantHandle
from tests.documents import docx_bomb, pdf_bomb
from tests.services import ApiServer, RabbitMqServer, free_port

pytestmark = pytest.mark.slow

SECRET = "celery-test-jwt-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMqServer]:
    server = RabbitMqServer(tmp_path_factory.mktemp("rabbitmq"))
    server.start()
    yield server
    server.stop()


class Worker:
    """`ragapi worker` in its own process group, so kill -9 takes its pool processes too."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "ragapi.api.cli", "worker", "--concurrency", "1"], env=env, start_new_session=True
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def _wait_for(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(240):
        while not await check():  # noqa: ASYNC110 - polling another process over HTTP
            await asyncio.sleep(0.2)


def _env(db_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "JWT_SECRET": SECRET,
        "CELERY_BROKER_URL": broker_url,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "DATA_DIR": str(tmp_path / "data"),
        "INGEST_LEASE_S": "4",
        "INGEST_TASK_FILES": "25",
        "MAX_DOCUMENTS_PER_REQUEST": "1000",
        "MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
        "LOG_LEVEL": "warning",
    }


def _api(env: dict[str, str], tmp_path: Path) -> ApiServer:
    api = ApiServer(tmp_path / "api", **{k: v for k, v in env.items() if k not in os.environ or k == "DATA_DIR"})
    api.start()
    return api


async def _running(db: Database, tenant_id: uuid.UUID, job_id: str) -> list[str]:
    async with db.tenant_session(tenant_id) as session:
        rows = await session.execute(
            text("SELECT id FROM ingest_files WHERE job_id = :j AND status = 'running'"), {"j": job_id}
        )
        return [str(r.id) for r in rows]


async def test_killed_worker_loses_and_duplicates_nothing(
    rabbitmq: RabbitMqServer, paused: AppState, tmp_path: Path
) -> None:
    db = paused.db
    env = _env(db.url, rabbitmq.url, tmp_path)
    api = _api(env, tmp_path)
    tenant = await create_tenant(db, "celery-crash")
    headers = {"X-API-Key": tenant.api_key}
    worker = Worker(env)
    try:
        documents = [{"text": f"Ledger entry {n}: invoice {n * 7919 % 100000} was paid in full."} for n in range(1000)]
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
            accepted = await http.post("/v1/ingest", json={"documents": documents})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]

            async def progress() -> dict:  # type: ignore[type-arg]
                return dict((await http.get(f"/v1/ingest/jobs/{job_id}")).json()["progress"])

            async def some_done() -> bool:
                return (await progress())["files_done"] >= 150

            async def running() -> list[str]:
                return await _running(db, tenant.tenant_id, job_id)

            async def mid_batch() -> bool:
                return bool(await running())

            await _wait_for(some_done)
            for _ in range(5):
                await _wait_for(mid_batch)
                worker.kill()
                await asyncio.sleep(0.5)  # a COMMIT already sent completes; a dropped connection rolls back
                # With its worker dead, what is still 'running' is exactly the batch it held when it died.
                in_flight = await running()
                if in_flight:
                    break
                worker = Worker(env)  # the kill fell between two batches (nothing held): try again
            assert in_flight, "the kill must land inside a batch"
            at_kill = (await progress())["files_done"]
            assert at_kill < 1000, "the job must still be running when its worker dies"

            worker = Worker(env)

            async def finished() -> bool:
                return bool((await http.get(f"/v1/ingest/jobs/{job_id}")).json()["finished_at"])

            await _wait_for(finished)
            job = (await http.get(f"/v1/ingest/jobs/{job_id}")).json()
        assert job["status"] == "succeeded"
        assert {d["status"] for d in job["documents"]} == {"created"}, "no document was written twice"
        assert job["progress"]["files_done"] == 1000
        async with db.tenant_session(tenant.tenant_id) as session:
            retried = await session.execute(
                text("SELECT attempts FROM ingest_files WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": in_flight}
            )
            assert {r.attempts for r in retried} == {2}, "the batch in flight was redone once, by the new worker"
        async with db.tenant_session(tenant.tenant_id) as session:
            row = (
                await session.execute(
                    text(
                        "SELECT count(*) AS docs, count(DISTINCT content_hash) AS hashes, sum(chunk_count) AS declared, "
                        "(SELECT count(*) FROM chunks) AS stored, "
                        "(SELECT count(DISTINCT (document_id, ord)) FROM chunks) AS distinct_chunks, "
                        "(SELECT chunk_count FROM knowledge_bases) AS kb_chunks FROM documents"
                    )
                )
            ).one()
        assert (row.docs, row.hashes) == (1000, 1000)
        assert row.declared == row.stored == row.distinct_chunks == row.kb_chunks
    finally:
        worker.stop()
        api.stop()


async def test_sigterm_lets_the_worker_finish_its_batch_and_leaves_the_rest_queued(
    rabbitmq: RabbitMqServer, paused: AppState, tmp_path: Path
) -> None:
    """Celery's warm shutdown: the batch in hand is finished (not redone), the queued ones wait."""
    db = paused.db
    env = _env(db.url, rabbitmq.url, tmp_path)
    api = _api(env, tmp_path)
    tenant = await create_tenant(db, "celery-sigterm")
    worker = Worker(env)
    try:
        documents = [{"text": f"Shipment {n}: crate {n * 104729 % 100000} left the dock."} for n in range(300)]
        async with httpx.AsyncClient(base_url=api.url, headers={"X-API-Key": tenant.api_key}, timeout=60) as http:
            accepted = await http.post("/v1/ingest", json={"documents": documents})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]

            async def mid_batch() -> bool:
                return bool(await _running(db, tenant.tenant_id, job_id))

            await _wait_for(mid_batch)
            in_hand = await _running(db, tenant.tenant_id, job_id)
            worker.process.send_signal(signal.SIGTERM)  # the main process, as a container runtime does
            assert worker.process.wait(timeout=60) == 0
            stopped = (await http.get(f"/v1/ingest/jobs/{job_id}")).json()
            assert stopped["finished_at"] is None and stopped["progress"]["files_done"] < 300
            assert not await _running(db, tenant.tenant_id, job_id), "nothing left half-done"

            worker = Worker(env)

            async def finished() -> bool:
                return bool((await http.get(f"/v1/ingest/jobs/{job_id}")).json()["finished_at"])

            await _wait_for(finished)
            job = (await http.get(f"/v1/ingest/jobs/{job_id}")).json()
        assert job["status"] == "succeeded" and job["progress"]["files_done"] == 300
        async with db.tenant_session(tenant.tenant_id) as session:
            rows = await session.execute(
                text("SELECT id, status, attempts FROM ingest_files WHERE job_id = :j"), {"j": job_id}
            )
            files = {str(r.id): (r.status, r.attempts) for r in rows}
        assert all(files[f] == ("created", 1) for f in in_hand), "the batch in hand was finished, not redone"
        assert {attempts for _, attempts in files.values()} == {1}
    finally:
        worker.stop()
        api.stop()


async def test_unreachable_broker_is_503_and_the_job_is_failed_not_lost(
    paused: AppState, client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    dead = SecretStr(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    embedded = paused.ingestion.dispatcher
    paused.ingestion.dispatcher = CeleryDispatcher(paused.settings.model_copy(update={"celery_broker_url": dead}))
    try:
        response = await client.post("/v1/ingest", headers=tenant.headers, json={"documents": [{"text": "Lost?"}]})
    finally:
        paused.ingestion.dispatcher = embedded
    problem = assert_problem(response, 503)
    assert "broker" in problem["detail"] and response.headers["retry-after"]
    listed = (await client.get("/v1/ingest/jobs", headers=tenant.headers)).json()["items"]
    assert [(j["status"], "broker" in (j["error"] or "")) for j in listed] == [("failed", True)]


def _peak_rss_mib(worker: Worker) -> float:
    """Peak resident memory of the worker's pool process (VmHWM), MiB."""
    children = subprocess.run(  # noqa: S603
        ["/usr/bin/ps", "-o", "pid=", "--ppid", str(worker.process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) == 1, children
    status = Path(f"/proc/{children[0]}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


async def test_bombs_and_garbage_fail_alone_with_bounded_worker_memory(
    rabbitmq: RabbitMqServer, paused: AppState, tenant: TenantHandle
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": paused.db.url,
        "JWT_SECRET": SECRET,
        "CELERY_BROKER_URL": rabbitmq.url,
        "UPLOAD_DIR": str(paused.settings.uploads_dir),
        "LOG_LEVEL": "warning",
        "WORKER_METRICS_PORT": str(metrics_port := free_port()),
    }
    dispatcher = CeleryDispatcher(paused.settings.model_copy(update={"celery_broker_url": SecretStr(rabbitmq.url)}))
    worker = Worker(env)

    async def run(items: list[IngestItem]) -> list[tuple[str, int | None]]:
        job = await jobs.submit(paused.db, paused.uploads, tenant.tenant_id, items)
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            await dispatcher.dispatch(job.id, [f.id for f in await jobs.files_of(session, job.id)])

        async def finished() -> bool:
            async with paused.db.tenant_session(tenant.tenant_id) as session:
                return (await session.get(IngestJob, job.id, populate_existing=True)).finished_at is not None  # type: ignore[union-attr]

        await _wait_for(finished)
        async with paused.db.tenant_session(tenant.tenant_id) as session:
            return [(f.status, (f.error or {}).get("status")) for f in await jobs.files_of(session, job.id)]

    try:
        assert await run([IngestItem(b"Warm-up: the model is loaded.", "warm.txt")]) == [("created", None)]
        baseline = _peak_rss_mib(worker)
        outcome = await run(
            [
                IngestItem(docx_bomb(1 << 30), "bomb.docx"),  # 1 GiB of zeros in a 1 MiB zip
                IngestItem(pdf_bomb(512 << 20), "bomb.pdf"),  # a content stream inflating to 512 MiB
                IngestItem(b"%PDF-1.7 truncated garbage", "corrupt.pdf", "application/pdf"),
                IngestItem(bytes(range(256)) * 64, "binary.txt", "text/plain"),
                IngestItem(b"Survivor: this memo is indexed despite its neighbours.", "fine.txt"),
            ]
        )
        peak = _peak_rss_mib(worker)
        async with httpx.AsyncClient() as http:  # the worker's own /metrics, summed over its pool processes
            exported = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    finally:
        worker.stop()
    assert 'rag_ingest_documents_total{outcome="failed"} 4.0' in exported
    assert 'rag_ingest_documents_total{outcome="indexed"} 2.0' in exported
    assert outcome == [("failed", 422), ("failed", 422), ("failed", 422), ("failed", 422), ("created", None)]
    assert peak - baseline < 150, f"worker peak RSS grew {peak - baseline:.0f} MiB (from {baseline:.0f} MiB)"


class PgGate:
    """A relay in front of PostgreSQL's unix socket that turns connections away until it is opened: a
    database the worker cannot reach, then can (a restart, a network partition)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        (self.target,) = [p for p in Path(str(parsed.query["host"])).glob(".s.PGSQL.*") if p.suffix != ".lock"]
        self.dir = Path(tempfile.mkdtemp(prefix="pggate-", dir="/tmp"))  # unix socket paths are short
        self.url = parsed.set(query={**parsed.query, "host": str(self.dir)}).render_as_string(hide_password=False)
        self.open = False
        self.refused = 0

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._relay, path=str(self.dir / self.target.name))

    async def close(self) -> None:
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(self.target))
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


async def test_a_failing_task_is_retried_and_expired_leases_are_dispatched_again(
    rabbitmq: RabbitMqServer, quiet: AppState, tenant: TenantHandle
) -> None:
    """1. The worker cannot reach the database: its task fails unexpectedly, is retried with backoff
    instead of being acknowledged and dropped, and the job finishes once the database is back.
    2. A worker dies holding files and its message is gone: the queue monitor returns them to the
    queue after their lease and dispatches them again, so the job ends within lease × attempts."""
    gate = PgGate(quiet.db.url)
    await gate.start()
    lease_s, attempts = 2.0, 5
    env = {
        **os.environ,
        "DATABASE_URL": gate.url,
        "JWT_SECRET": SECRET,
        "CELERY_BROKER_URL": rabbitmq.url,
        "UPLOAD_DIR": str(quiet.settings.uploads_dir),
        "INGEST_RETRY_BASE_S": "0.5",
        "INGEST_LEASE_S": str(lease_s),
        "INGEST_MAX_ATTEMPTS": str(attempts),
        "LOG_LEVEL": "error",
    }
    dispatcher = CeleryDispatcher(quiet.settings.model_copy(update={"celery_broker_url": SecretStr(rabbitmq.url)}))
    worker = Worker(env)

    async def finished(job_id: uuid.UUID) -> list[tuple[str, int]]:
        async with quiet.db.tenant_session(tenant.tenant_id) as session:
            job = await session.get(IngestJob, job_id, populate_existing=True)
            if job is None or job.finished_at is None:
                return []
            return [(f.status, f.attempts) for f in await jobs.files_of(session, job_id)]

    async def until(check: Callable[[], Awaitable[object]], timeout_s: float = 90) -> None:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - another process's progress
                await asyncio.sleep(0.1)

    reclaimer: asyncio.Task[None] | None = None
    try:
        first = await jobs.submit(quiet.db, quiet.uploads, tenant.tenant_id, [IngestItem(b"Retried: dock 4.", "a.txt")])
        async with quiet.db.tenant_session(tenant.tenant_id) as session:
            await dispatcher.dispatch(first.id, [f.id for f in await jobs.files_of(session, first.id)])

        async def turned_away() -> bool:
            return gate.refused > 0

        await until(turned_away)  # the task ran and failed: the database is unreachable
        gate.open = True
        await until(lambda: finished(first.id))
        assert await finished(first.id) == [("created", 1)]

        second = await jobs.submit(quiet.db, quiet.uploads, tenant.tenant_id, notes_for_celery(2))
        held = await jobs.claim(quiet.db, "worker-that-died", lease_s, 10, second.id)  # no message exists
        assert len(held) == 2
        started = time.monotonic()
        reclaimer = asyncio.create_task(monitor.run(quiet.db, 0.25, dispatcher.dispatch))
        await until(lambda: finished(second.id))
        assert time.monotonic() - started < lease_s * attempts
        assert await finished(second.id) == [("created", 2), ("created", 2)]
    finally:
        if reclaimer is not None:
            reclaimer.cancel()
        worker.stop()
        await gate.close()


def notes_for_celery(n: int) -> list[IngestItem]:
    return [IngestItem(f"Reclaimed note {i}: pier {i} is closed.".encode(), f"pier-{i}.txt") for i in range(n)]
