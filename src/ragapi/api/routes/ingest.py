"""POST /v1/ingest (multipart files or JSON documents) answers 202 with a durable job; the job API
shows its progress (polling or server-sent events) and cancels it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import col, select
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ragapi.api.dependencies import IngestTenant, QueryTenant, State
from ragapi.api.drain import DRAIN, shutdown_event
from ragapi.api.pagination import page_query, split_page
from ragapi.api.problems import problem, problem_response
from ragapi.api.schemas import IngestJson, JobFile, JobOut, JobPage, JobProgress, JobSummary
from ragapi.api.state import AppState
from ragapi.core import inputs
from ragapi.core.errors import InvalidInput, NotFound, ServiceUnavailable, UnsupportedMediaType
from ragapi.ingestion import jobs
from ragapi.ingestion.fetch import check_url
from ragapi.ingestion.lookup import find_job
from ragapi.ingestion.metadata import check_metadata
from ragapi.ingestion.models import IngestFile, IngestJob
from ragapi.ingestion.pipeline import IngestItem

JOB_STATUS_PATTERN = "^(queued|running|succeeded|failed|partially_failed|cancelled)$"

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


def _json_field(raw: str | None, name: str, kind: type) -> Any:
    if raw is None or raw == "":
        return kind()
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput(f"form field '{name}' must be JSON") from exc
    if not isinstance(value, kind):
        raise InvalidInput(f"form field '{name}' must be a JSON {kind.__name__}")
    return inputs.check(value, name)


async def _form(request: Request, max_files: int) -> FormData:
    """The multipart body, with the parser's refusals as our own problems (it answers a bare 400)."""
    try:
        return await request.form(max_files=max_files + 1, max_fields=100)
    except HTTPException as exc:
        if "Too many files" in str(exc.detail):
            raise InvalidInput(f"at most {max_files} files per request (MAX_FILES_PER_REQUEST)") from exc
        raise InvalidInput(f"multipart body: {exc.detail}") from exc


async def _items_from_multipart(request: Request, state: State) -> list[IngestItem]:
    limit = state.settings.max_files_per_request
    form = await _form(request, limit)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise InvalidInput("multipart upload needs at least one part named 'files'")
    if len(files) > limit:
        raise InvalidInput(f"at most {limit} files per request (MAX_FILES_PER_REQUEST)")
    metadata = check_metadata(_json_field(_text(form.get("metadata")), "metadata", dict), "metadata", state.settings)
    external_ids = _json_field(_text(form.get("external_ids")), "external_ids", list)
    if external_ids and len(external_ids) != len(files):
        raise InvalidInput("external_ids must list one id (or null) per file, in order")
    items = []
    for n, upload in enumerate(files):
        ext_id = external_ids[n] if external_ids else None
        if ext_id is not None and not (isinstance(ext_id, str | int) and 1 <= len(str(ext_id)) <= 500):
            raise InvalidInput(f"external_ids.{n} must be a string of 1 to 500 characters, or null")
        items.append(
            IngestItem(
                data=await upload.read(),
                filename=inputs.check(upload.filename, f"files.{n}.filename"),
                content_type=inputs.check(upload.content_type, f"files.{n}.content_type"),
                metadata=dict(metadata),
                external_id=str(ext_id) if ext_id is not None else None,
            )
        )
    return items


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _items_from_json(request: Request, state: State) -> list[IngestItem]:
    body = await request.body()
    try:  # off the event loop: the body may be MAX_UPLOAD_BYTES of JSON
        # Python's decoder, as for every other body: it keeps a lone surrogate for the input policy to name
        parsed = await asyncio.to_thread(lambda: IngestJson.model_validate(json.loads(body)))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else first["msg"]) from exc
    except (ValueError, RecursionError) as exc:  # not JSON (or not UTF-8), or nested beyond the decoder
        raise InvalidInput("the body is not valid JSON") from exc
    limit = state.settings.max_documents_per_request
    if len(parsed.documents) > limit:
        raise InvalidInput(f"at most {limit} documents per request (MAX_DOCUMENTS_PER_REQUEST)")
    items = []
    for n, d in enumerate(parsed.documents):
        metadata = check_metadata(d.metadata, f"documents.{n}.metadata", state.settings)
        url = None
        if d.url is not None:
            try:
                url = check_url(d.url)
            except InvalidInput as exc:
                raise InvalidInput(f"documents.{n}.url: {exc.detail}") from exc
        items.append(
            IngestItem(
                data=d.text.encode() if d.text is not None else b"",
                filename=None,
                content_type="text/plain" if d.text is not None else None,
                title=d.title,
                metadata=metadata,
                external_id=d.external_id,
                url=url,
            )
        )
    return items


def _links(job_id: uuid.UUID) -> dict[str, str]:
    base = f"/v1/ingest/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"}


def _summary(job: IngestJob, progress: jobs.Progress) -> JobSummary:
    return JobSummary(
        job_id=job.id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        progress=JobProgress(**progress.as_json()),
        links=_links(job.id),
    )


def _file_out(f: IngestFile) -> JobFile:
    return JobFile(
        index=f.ord,
        filename=f.filename or f.url,
        status=f.status,
        document_id=f.document_id,
        chunks=f.chunks,
        error=f.error if f.status == "failed" else None,
        removed_characters=f.removed_characters,
        attempts=f.attempts,
        started_at=f.started_at,
        finished_at=f.finished_at,
    )


async def _load_job(state: AppState, tenant_id: uuid.UUID, job_id: uuid.UUID, files: bool) -> JobOut:
    async with state.db.tenant_session(tenant_id, durable=False) as session:
        job = await find_job(session, tenant_id, job_id)
        if job is None:
            raise NotFound("no such ingest job")
        summary = _summary(job, (await jobs.progress_of(session, [job_id]))[job_id])
        documents = [_file_out(f) for f in await jobs.files_of(session, job_id)] if files else []
    return JobOut(**summary.model_dump(), documents=documents)


async def _wait(state: AppState, tenant_id: uuid.UUID, job_id: uuid.UUID) -> JobOut:
    """Poll until the job finishes or INGEST_WAIT_MAX_S passes (then it is still running)."""
    deadline = time.monotonic() + state.settings.ingest_wait_max_s
    pause = 0.02
    while True:
        job = await _load_job(state, tenant_id, job_id, files=False)
        if job.finished_at is not None or time.monotonic() >= deadline:
            return await _load_job(state, tenant_id, job_id, files=True)
        await asyncio.sleep(pause)
        pause = min(pause * 2, state.settings.ingest_poll_s)


def _finished_response(job: JobOut) -> JSONResponse:
    body = job.model_dump(mode="json")
    if job.status in ("succeeded", "cancelled"):
        return JSONResponse(body, status_code=200)
    if job.status == "partially_failed":
        return JSONResponse(body, status_code=207)
    # Everything failed: answer with the (first) failure's own status, the per-file list attached.
    first = next(d.error for d in job.documents if d.error)
    assert first is not None  # noqa: S101 - a failed job has an error
    return problem_response(
        problem(first["status"], first["title"], first["detail"], job_id=str(job.job_id), documents=body["documents"])
    )


@router.post(
    "",
    status_code=202,
    response_model=JobSummary,
    summary="Ingest files (multipart 'files') or JSON {documents: [...]}: 202 with a job to follow",
    responses={
        200: {"model": JobOut, "description": "?wait=true: the job finished; every document's outcome"},
        207: {"model": JobOut, "description": "?wait=true: some documents failed; see each one's status"},
    },
)
async def ingest(
    request: Request,
    state: State,
    tenant: IngestTenant,
    wait: Annotated[bool, Query(description="Answer when the job has finished (up to INGEST_WAIT_MAX_S)")] = False,
) -> JSONResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        items = await _items_from_multipart(request, state)
    elif kind == "application/json":
        items = await _items_from_json(request, state)
    else:
        raise UnsupportedMediaType("send multipart/form-data with 'files' parts, or application/json")
    job = await jobs.submit(state.db, state.uploads, tenant.tenant_id, items, plan=tenant.plan)
    async with state.db.tenant_session(tenant.tenant_id, durable=False) as session:
        file_ids = await jobs.file_ids(session, job.id)
    try:
        await state.dispatcher.dispatch(job.id, file_ids)
    except ServiceUnavailable as exc:
        await jobs.fail_job(state.db, tenant.tenant_id, job.id, exc.detail)
        raise
    if wait:
        done = await _wait(state, tenant.tenant_id, job.id)
        if done.finished_at is not None:
            return _finished_response(done)
    summary = await _load_job(state, tenant.tenant_id, job.id, files=False)
    body = JobSummary(**summary.model_dump(exclude={"documents"})).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": summary.links["self"]})


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    state: State,
    tenant: QueryTenant,
    limit: Annotated[int, Query(ge=1, description="Page size, at most PAGE_SIZE_MAX")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[
        str | None, Query(pattern="^(queued|running|succeeded|failed|partially_failed|cancelled)$")
    ] = None,
) -> JobPage:
    statement = select(IngestJob).where(col(IngestJob.tenant_id) == tenant.tenant_id)
    if status:
        statement = statement.where(col(IngestJob.status) == status)
    statement = page_query(statement, IngestJob, cursor, limit, state.settings.page_size_max)
    async with state.db.tenant_session(tenant.tenant_id, durable=False) as session:
        page, next_cursor = split_page(list((await session.execute(statement)).scalars()), limit)
        progress = await jobs.progress_of(session, [job.id for job in page])
    items = [_summary(job, progress[job.id]) for job in page]
    return JobPage(items=items, next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, state: State, tenant: QueryTenant) -> JobOut:
    return await _load_job(state, tenant.tenant_id, job_id, files=True)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: uuid.UUID, state: State, tenant: IngestTenant) -> JobOut:
    """Files not yet indexed are cancelled; documents already indexed stay (delete them if unwanted)."""
    if await jobs.cancel(state.db, state.uploads, tenant.tenant_id, job_id) is None:
        raise NotFound("no such ingest job")
    return await _load_job(state, tenant.tenant_id, job_id, files=True)


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse)
async def job_events(job_id: uuid.UUID, state: State, tenant: QueryTenant) -> EventSourceResponse:
    """Server-sent events: `progress` whenever the job moves, then one `done` with the final state.

    A server shutting down ends the stream at once with an `error` event (503): the job goes on, and the
    client reconnects to another instance rather than hold this one for the whole drain.
    """
    first = await _load_job(state, tenant.tenant_id, job_id, files=False)

    async def events() -> AsyncIterator[dict[str, Any]]:
        job, last = first, ""
        while True:
            if DRAIN.draining:
                yield shutdown_event()
                return
            body = JobSummary(**job.model_dump(exclude={"documents"})).model_dump_json()
            if job.finished_at is not None:
                yield {"event": "done", "data": body}
                return
            if body != last:
                yield {"event": "progress", "data": body}
                last = body
            with suppress(TimeoutError):
                await asyncio.wait_for(DRAIN.wait_started(), state.settings.ingest_poll_s)
            job = await _load_job(state, tenant.tenant_id, job_id, files=False)

    return EventSourceResponse(events(), ping=15)
