"""POST /v1/search: the passages a question retrieves, with their citations and no answer (for retrievers
in other applications: `ragapi.client.langchain.RagApiRetriever`)."""

from __future__ import annotations

from fastapi import APIRouter

from ragapi.answering.question import AnswerRequest, Question, Surface
from ragapi.api.dependencies import QueryTenant
from ragapi.api.services import AnswerServiceDep, SettingsDep
from ragapi.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["query"])


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="The passages a question retrieves from the tenant's documents, with citations, without an answer",
)
async def search(
    body: SearchRequest, answers: AnswerServiceDep, settings: SettingsDep, tenant: QueryTenant
) -> SearchResponse:
    """Retrieved as an answer's sources are (the knowledge bases' settings, filters, reranking) and charged
    as a query, and in the query log as a question is; not cached."""
    question = Question.parse(body.query, body.top_k, body.filters, False, settings, body.knowledge_bases)
    found = await answers.search(AnswerRequest(tenant, Surface.REST, question))
    return SearchResponse(query_id=found.query_id, passages=found.passages)
