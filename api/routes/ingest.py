"""POST /v1/ingest (multipart files or JSON documents) and ingest job lookup."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.dependencies import IngestTenant, QueryTenant, State
from api.problems import problem, problem_response
from api.schemas import IngestJson, IngestResponse, JobOut
from core.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from ingestion.lookup import find_job
from ingestion.pipeline import IngestItem, JobReport
from tenants import quotas
from tenants.context import TenantContext

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


def _json_field(raw: str | None, name: str, kind: type) -> Any:
    if raw is None or raw == "":
        return kind()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"form field '{name}' must be JSON") from exc
    if not isinstance(value, kind):
        raise InvalidInput(f"form field '{name}' must be a JSON {kind.__name__}")
    return value


async def _items_from_multipart(request: Request, state: State) -> list[IngestItem]:
    limit = state.settings.max_files_per_request
    form = await request.form(max_files=limit + 1, max_fields=100)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise InvalidInput("multipart upload needs at least one part named 'files'")
    if len(files) > limit:
        raise InvalidInput(f"at most {limit} files per request (MAX_FILES_PER_REQUEST)")
    metadata = _json_field(_text(form.get("metadata")), "metadata", dict)
    external_ids = _json_field(_text(form.get("external_ids")), "external_ids", list)
    if external_ids and len(external_ids) != len(files):
        raise InvalidInput("external_ids must list one id (or null) per file, in order")
    items = []
    for n, upload in enumerate(files):
        data = await upload.read()
        ext_id = external_ids[n] if external_ids else None
        items.append(
            IngestItem(
                data=data,
                filename=upload.filename,
                content_type=upload.content_type,
                metadata=dict(metadata),
                external_id=str(ext_id) if ext_id is not None else None,
            )
        )
    return items


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _items_from_json(request: Request, state: State) -> list[IngestItem]:
    try:
        body = IngestJson.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else first["msg"]) from exc
    limit = state.settings.max_documents_per_request
    if len(body.documents) > limit:
        raise InvalidInput(f"at most {limit} documents per request (MAX_DOCUMENTS_PER_REQUEST)")
    return [
        IngestItem(
            data=d.text.encode() if d.text is not None else b"",
            filename=None,
            content_type="text/plain" if d.text is not None else None,
            title=d.title,
            metadata=d.metadata,
            external_id=d.external_id,
            url=d.url,
        )
        for d in body.documents
    ]


def _response(report: JobReport) -> JSONResponse:
    body = IngestResponse(
        job_id=report.job_id,
        status=report.status,
        documents=[r.as_json() for r in report.results],  # type: ignore[misc]
    ).model_dump(mode="json")
    if report.status == "succeeded":
        return JSONResponse(body, status_code=200)
    if report.status == "partially_failed":
        return JSONResponse(body, status_code=207)
    # Everything failed: answer with the (first) failure's own status, the per-file list attached.
    first = next(r.error for r in report.results if r.error)
    assert first is not None  # noqa: S101 - a failed job has an error
    return problem_response(
        problem(
            first["status"], first["title"], first["detail"], job_id=str(report.job_id), documents=body["documents"]
        )
    )


@router.post(
    "",
    response_model=IngestResponse,
    summary="Ingest files (multipart 'files') or JSON {documents: [...]}",
    responses={207: {"description": "Some documents failed; see each one's status"}},
)
async def ingest(request: Request, state: State, tenant: IngestTenant) -> JSONResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        items = await _items_from_multipart(request, state)
    elif kind == "application/json":
        items = await _items_from_json(request, state)
    else:
        raise UnsupportedMediaType("send multipart/form-data with 'files' parts, or application/json")
    await _charge(state, tenant, items)
    sent = sum(len(i.data) for i in items)
    report = await state.pipeline.run(tenant.tenant_id, items, fetch_max_bytes=tenant.plan.max_document_bytes)
    fetched = sum(len(i.data) for i in items) - sent
    if fetched:  # URL documents are charged once their size is known
        await quotas.charge(state.db, tenant.tenant_id, tenant.plan.unlimited_ingest(), ingest_bytes=fetched)
    return _response(report)


async def _charge(state: State, tenant: TenantContext, items: list[IngestItem]) -> None:
    """The plan's document size limit, then its monthly ingest budget (charged for what was sent)."""
    limit = tenant.plan.max_document_bytes
    for n, item in enumerate(items):
        if len(item.data) > limit:
            name = item.filename or f"document {n}"
            raise PayloadTooLarge(f"{name} is {len(item.data)} bytes; this tenant's plan allows {limit} per document")
    await quotas.charge(state.db, tenant.tenant_id, tenant.plan, ingest_bytes=sum(len(i.data) for i in items))


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, state: State, tenant: QueryTenant) -> JobOut:
    async with state.db.tenant_session(tenant.tenant_id) as session:
        job = await find_job(session, tenant.tenant_id, job_id)
    if job is None:
        raise NotFound("no such ingest job")
    return JobOut(
        job_id=job.id,
        status=job.status,
        created_at=job.created_at,
        finished_at=job.finished_at,
        documents=job.results,  # type: ignore[arg-type]
    )
