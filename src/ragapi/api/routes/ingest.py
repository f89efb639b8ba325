"""POST /v1/ingest (multipart files or JSON documents) answers 202 with a durable job; the job API
shows its progress (polling or server-sent events) and cancels it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ragapi.api.dependencies import IngestTenant, QueryTenant
from ragapi.api.drain import DRAIN, shutdown_event
from ragapi.api.params import KnowledgeBaseQuery
from ragapi.api.problems import problem, problem_response
from ragapi.api.services import FollowedJob, IngestionDep, KnowledgeBasesDep, ReadableJob, SettingsDep
from ragapi.core import inputs
from ragapi.core.access import DocumentAccess
from ragapi.core.errors import InvalidInput, UnsupportedMediaType
from ragapi.core.settings import Settings
from ragapi.ingestion.fetch import check_url
from ragapi.ingestion.metadata import check_metadata
from ragapi.ingestion.models import IngestFile
from ragapi.ingestion.pipeline import IngestItem
from ragapi.ingestion.service import JobView
from ragapi.schemas import (
    AccessIn,
    IngestJson,
    JobFile,
    JobOut,
    JobPage,
    JobProgress,
    JobSummary,
)

JOB_STATUS_PATTERN = "^(queued|running|succeeded|failed|partially_failed|cancelled)$"

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])
# The body the route reads itself (it takes either kind), as the OpenAPI document describes it: files as
# binary parts, so that Swagger UI's "Try it out" offers a file picker.
MULTIPART = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "title": "IngestFiles",
            "required": ["files"],
            "properties": {
                "files": {
                    "type": "array",
                    "items": {"type": "string", "format": "binary"},
                    "description": "The files (PDF, DOCX, HTML, Markdown, text, JSON), at most MAX_FILES_PER_REQUEST",
                },
                "metadata": {
                    "type": "string",
                    "default": "{}",
                    "description": 'JSON object given to every file, e.g. {"lang": "en"}',
                },
                "external_ids": {
                    "type": "string",
                    "default": "[]",
                    "description": 'JSON list: one id (or null) per file, in order, e.g. ["hr-001", null]; [] for none',
                },
            },
        },
        "encoding": {"files": {"contentType": "application/octet-stream"}},
    }
}
JSON_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestJson"}}}


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


async def _items_from_multipart(request: Request, settings: Settings) -> list[IngestItem]:
    limit = settings.max_files_per_request
    form = await _form(request, limit)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise InvalidInput("multipart upload needs at least one part named 'files'")
    if len(files) > limit:
        raise InvalidInput(f"at most {limit} files per request (MAX_FILES_PER_REQUEST)")
    metadata = check_metadata(_json_field(_text(form.get("metadata")), "metadata", dict), "metadata", settings)
    external_ids = _json_field(_text(form.get("external_ids")), "external_ids", list)
    access = _access_field(_text(form.get("access")))
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
                access=access,
            )
        )
    return items


def _access_field(raw: str | None) -> DocumentAccess | None:
    """Form field `access`: the JSON object the JSON body takes per document, for every file; absent,
    empty or null: the whole tenant."""
    if raw is None or raw.strip() in ("", "null"):
        return None
    value = _json_field(raw, "access", dict)
    try:
        return AccessIn.model_validate(value).model()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("access", *first["loc"]))
        raise InvalidInput(f"{where}: {first['msg']}") from exc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _items_from_json(request: Request, settings: Settings) -> list[IngestItem]:
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
    limit = settings.max_documents_per_request
    if len(parsed.documents) > limit:
        raise InvalidInput(f"at most {limit} documents per request (MAX_DOCUMENTS_PER_REQUEST)")
    items = []
    for n, d in enumerate(parsed.documents):
        metadata = check_metadata(d.metadata, f"documents.{n}.metadata", settings)
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
                access=d.access.model() if d.access is not None else None,
            )
        )
    return items


def _links(job_id: uuid.UUID) -> dict[str, str]:
    base = f"/v1/ingest/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"}


def _summary(view: JobView) -> JobSummary:
    job = view.job
    return JobSummary(
        job_id=job.id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        progress=JobProgress(**view.progress.as_json()),
        links=_links(job.id),
    )


def _job_out(view: JobView) -> JobOut:
    return JobOut(**_summary(view).model_dump(), documents=[_file_out(f, view) for f in view.files])


def _file_out(f: IngestFile, view: JobView) -> JobFile:
    """A file whose document the caller may not read keeps its outcome, not its name, and its document's
    id only for a caller that manages access (which acts on documents by id)."""
    secret = f.document_id in view.hidden
    return JobFile(
        index=f.ord,
        filename=None if secret else f.filename or f.url,
        status=f.status,
        document_id=None if secret and not view.manages_access else f.document_id,
        chunks=f.chunks,
        error=f.error if f.status == "failed" else None,
        removed_characters=f.removed_characters,
        attempts=f.attempts,
        started_at=f.started_at,
        finished_at=f.finished_at,
    )


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
    openapi_extra={"requestBody": {"required": True, "content": {**MULTIPART, **JSON_BODY}}},
)
async def ingest(
    request: Request,
    ingestion: IngestionDep,
    settings: SettingsDep,
    tenant: IngestTenant,
    knowledge_bases: KnowledgeBasesDep,
    wait: Annotated[bool, Query(description="Answer when the job has finished (up to INGEST_WAIT_MAX_S)")] = False,
    knowledge_base: KnowledgeBaseQuery = None,
) -> JSONResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        items = await _items_from_multipart(request, settings)
    elif kind == "application/json":
        items = await _items_from_json(request, settings)
    else:
        raise UnsupportedMediaType("send multipart/form-data with 'files' parts, or application/json")
    job = await ingestion.submit(tenant, items, await knowledge_bases.target(tenant, knowledge_base))
    if wait:
        done = await ingestion.wait(tenant, job.id)
        if done.finished:
            return _finished_response(_job_out(done))
    summary = _summary(await ingestion.job(tenant, job.id))
    return JSONResponse(summary.model_dump(mode="json"), status_code=202, headers={"Location": summary.links["self"]})


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    ingestion: IngestionDep,
    tenant: QueryTenant,
    limit: Annotated[int, Query(ge=1, description="Page size, at most PAGE_SIZE_MAX")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern=JOB_STATUS_PATTERN)] = None,
) -> JobPage:
    page, next_cursor = await ingestion.jobs(tenant, status, cursor, limit)
    return JobPage(items=[_summary(view) for view in page], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job: ReadableJob) -> JobOut:
    return _job_out(job)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: uuid.UUID, ingestion: IngestionDep, tenant: IngestTenant) -> JobOut:
    """Files not yet indexed are cancelled; documents already indexed stay (delete them if unwanted)."""
    return _job_out(await ingestion.cancel(tenant, job_id))


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`progress` events, then `done`"}},
)
async def job_events(
    job: FollowedJob, ingestion: IngestionDep, settings: SettingsDep, tenant: QueryTenant
) -> EventSourceResponse:
    """Server-sent events: `progress` whenever the job moves, then one `done` with the final state.

    A server shutting down ends the stream at once with an `error` event (503): the job goes on, and the
    client reconnects to another instance rather than hold this one for the whole drain.
    """

    async def events() -> AsyncIterator[dict[str, Any]]:
        view, last = job, ""
        while True:
            if DRAIN.draining:
                yield shutdown_event()
                return
            body = _summary(view).model_dump_json()
            if view.finished:
                yield {"event": "done", "data": body}
                return
            if body != last:
                yield {"event": "progress", "data": body}
                last = body
            with suppress(TimeoutError):
                await asyncio.wait_for(DRAIN.wait_started(), settings.ingest_poll_s)
            view = await ingestion.job(tenant, view.job.id)

    return EventSourceResponse(events(), ping=15)
