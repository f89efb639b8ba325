"""Telling workers that a job has files: wake the in-process worker, or publish Celery tasks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from ragapi.core.errors import ServiceUnavailable
from ragapi.core.settings import Settings
from ragapi.ingestion.worker import IngestWorker


class Dispatcher(Protocol):
    async def dispatch(self, job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None: ...

    def check(self) -> None: ...


class LocalDispatcher:
    """Embedded mode: the job is already in PostgreSQL; wake this process's worker (workers in other
    processes sharing the database find it on their next poll)."""

    def __init__(self, worker: IngestWorker | None) -> None:
        self.worker = worker

    async def dispatch(self, job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:  # noqa: ARG002
        if self.worker is not None:
            self.worker.wake()

    def check(self) -> None:
        """Nothing between the API and the queue: it is the database, checked on its own."""


class CeleryDispatcher:
    """One task per INGEST_TASK_FILES files, published with broker confirmation."""

    def __init__(self, settings: Settings) -> None:
        from ragapi.ingestion import celery_app

        self.celery = celery_app
        self.client = celery_app.publisher(settings)
        self.batch = settings.ingest_task_files
        self.broker_url = settings.celery_broker_url.get_secret_value() if settings.celery_broker_url else ""
        self.check_timeout_s = settings.readiness_timeout_s

    def check(self) -> None:
        """Open and close a broker connection (readiness); raises when the broker does not answer."""
        from kombu.connection import Connection

        with Connection(self.broker_url, connect_timeout=self.check_timeout_s) as connection:  # type: ignore[no-untyped-call]
            connection.connect()

    async def dispatch(self, job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
        batches = [file_ids[i : i + self.batch] for i in range(0, len(file_ids), self.batch)]
        try:
            await asyncio.to_thread(lambda: [self.celery.publish(self.client, job_id, b) for b in batches])
        except Exception as exc:  # broker down or refusing: the caller fails the job, the client retries
            raise ServiceUnavailable(f"the ingestion broker is unreachable ({type(exc).__name__})") from exc
