"""One knowledge base's page, for the tenant's admins: rename it, describe it, change its retrieval
settings, delete it. The page shows what is stored and what the service would use in its place; the
changes go to `PATCH` and `DELETE /v1/knowledge-bases/{id}` from the page's script, so the API's checks
(and their problems, shown next to the field they name) are the only ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize
from ragapi.api.services import KnowledgeBasesDep, SettingsDep
from ragapi.core.settings import Reranker
from ragapi.retrieval.knowledge_bases import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS
from ragapi.tenants.context import Scope

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/knowledge-bases/{ref}")
async def knowledge_base(
    request: Request,
    principal: ConsoleUser,
    service: KnowledgeBasesDep,
    settings: SettingsDep,
    ref: Annotated[str, Path(max_length=MAX_NAME_CHARS)],
) -> Response:
    """Its settings as a form: an empty field follows the service's setting, shown as the placeholder."""
    tenant = await authorize(request, Scope.ADMIN)
    kb = await service.get(tenant, ref)
    defaults = {
        "chunk_size_tokens": settings.chunk_size_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "fusion_dense_weight": settings.fusion_dense_weight,
        "top_k": settings.default_top_k,
        "rerank": "on" if settings.effective_reranker is not Reranker.NONE else "off (no reranker is set up)",
        "answer_mode": "llm" if settings.openai_api_key is not None else "extractive (no LLM is set up)",
    }
    return render(
        request,
        "knowledge_base.html",
        principal,
        kb=kb,
        own=kb.settings.stored(),
        defaults=defaults,
        models=await service.embedding_models(),
        max_top_k=settings.max_top_k,
        max_name=MAX_NAME_CHARS,
        max_description=MAX_DESCRIPTION_CHARS,
    )
