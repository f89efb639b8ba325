"""POST /v1/feedback (one per person per query, updatable) and GET /v1/feedback/export (an eval set)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ragapi.analytics import feedback
from ragapi.api.dependencies import AdminTenant, FeedbackTenant
from ragapi.api.params import KnowledgeBaseFilter
from ragapi.api.services import DatabaseDep, KnowledgeBasesDep, QueryLogDep
from ragapi.schemas import FeedbackExport, FeedbackIn, FeedbackOut

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post(
    "",
    response_model=FeedbackOut,
    status_code=201,
    responses={200: {"model": FeedbackOut, "description": "Your earlier feedback on this query was updated"}},
    summary="Rate an answer (and optionally the sources it is about)",
)
async def give_feedback(
    body: FeedbackIn, db: DatabaseDep, query_log: QueryLogDep, tenant: FeedbackTenant
) -> JSONResponse:
    saved = await feedback.submit(db, query_log, tenant, body.query_id, body.rating, body.comment, body.chunk_ids)
    out = FeedbackOut(feedback_id=saved.feedback_id, query_id=body.query_id, score=saved.score)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if saved.created else 200)


@router.get(
    "/export",
    response_model=FeedbackExport,
    summary="Positively rated answers as BEIR queries and qrels (for `ragapi eval --tenant`)",
)
async def export_feedback(
    db: DatabaseDep, knowledge_bases: KnowledgeBasesDep, tenant: AdminTenant, knowledge_base: KnowledgeBaseFilter = None
) -> FeedbackExport:
    """Of one knowledge base (a key restricted to some: one of its own), or of the whole tenant."""
    kb = await knowledge_bases.scope_of(tenant, knowledge_base)
    return FeedbackExport(**await feedback.export(db, tenant.tenant_id, kb))
