"""Celery on RabbitMQ: one task per batch of files, acknowledged only after the batch is recorded.

`acks_late` plus `task_reject_on_worker_lost` make RabbitMQ redeliver the message of a worker that
died mid-task; the redelivered task claims whatever of its files is not finished yet (waiting out a
dead worker's lease by retrying later). A task handles at most INGEST_TASK_FILES files, minutes at
most, far below RabbitMQ's 30-minute delivery acknowledgement timeout.

A task that fails unexpectedly (the database unreachable, say) is not dropped: it is retried with
backoff (INGEST_RETRY_BASE_S doubling, up to INGEST_TASK_RETRY_MAX_S). Files it had claimed count that
attempt, so a file that keeps failing its task ends "Gave up" after INGEST_MAX_ATTEMPTS; and should a
message be lost anyway, the API's queue monitor dispatches files whose lease ran out again.

Parsing, embedding and writing stay in one task (one queue): handing parsed chunks to a separate
embedding task would push every document's text through the broker and add a second place to lose
it, for no gain while the embedding model is the bottleneck on the same machines.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from celery import Celery, Task

from ragapi.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUEUE = "ragapi.ingest"
TASK = "ragapi.ingest_files"

CONFIG: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_ignore_result": True,  # job state lives in PostgreSQL, not in a result backend
    "task_default_queue": QUEUE,
    "worker_prefetch_multiplier": 1,
    "worker_hijack_root_logger": False,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {"confirm_publish": True},
    "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    "task_serializer": "json",
    "accept_content": ["json"],
}
app = Celery("ragapi")  # the worker side: `ragapi worker` runs the task below
app.conf.update(CONFIG)


def configure(settings: Settings) -> Celery:
    if settings.celery_broker_url is None:
        raise ValueError("CELERY_BROKER_URL is not set")
    app.conf.broker_url = settings.celery_broker_url.get_secret_value()
    return app


class _Runtime:
    """One per worker process, built on its first task (after the fork): an event loop that outlives
    tasks, so the database pool and the embedding model are reused."""

    def __init__(self) -> None:
        from ragapi.ingestion.runtime import build_worker  # heavy imports only in worker processes

        self.runner = asyncio.Runner()
        try:
            self.worker = self.runner.run(build_worker(get_settings()))
        except BaseException:
            self.runner.close()
            raise


_runtime: _Runtime | None = None


def _drain(job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> float | None:
    global _runtime
    if _runtime is None:
        _runtime = _Runtime()
    return _runtime.runner.run(_runtime.worker.drain(job_id, file_ids))


def retry_delay(settings: Settings, retries: int) -> float:
    """Backoff before a task that failed unexpectedly runs again, after `retries` earlier retries."""
    return float(min(settings.ingest_retry_base_s * 2 ** min(retries, 32), settings.ingest_task_retry_max_s))


@app.task(bind=True, name=TASK, max_retries=None)  # type: ignore[untyped-decorator]
def ingest_files(self: Task, job_id: str, file_ids: list[str]) -> None:  # type: ignore[type-arg]
    job, files = uuid.UUID(job_id), [uuid.UUID(f) for f in file_ids]  # a malformed message fails here, once
    try:
        delay = _drain(job, files)
    except Exception:
        countdown = retry_delay(get_settings(), self.request.retries or 0)
        log.exception("job %s: ingestion task failed unexpectedly; retrying in %.1f s", job_id, countdown)
        raise self.retry(countdown=countdown) from None
    if delay is not None:
        log.info("job %s: %d files pending elsewhere, retrying in %.1f s", job_id, len(file_ids), delay)
        raise self.retry(countdown=delay)


def publisher(settings: Settings) -> Celery:
    """The API side: its own app and connection pool, publishing tasks by name."""
    if settings.celery_broker_url is None:
        raise ValueError("CELERY_BROKER_URL is not set")
    client = Celery("ragapi-api", broker=settings.celery_broker_url.get_secret_value())
    client.conf.update(CONFIG)
    return client


def publish(client: Celery, job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> Any:
    return client.send_task(TASK, args=[str(job_id), [str(f) for f in file_ids]], queue=QUEUE)
