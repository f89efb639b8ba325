"""/v1/knowledge-bases: a tenant's collections of documents, each with its own retrieval settings.

Anyone of the tenant may list and read the ones their credential may use; creating, changing and
deleting take the admin scope. Deleting answers 202: the knowledge base disappears from questions and
ingestion at once, and its GET shows the deletion's progress until it is gone (then 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ragapi.api.dependencies import AdminTenant, QueryTenant
from ragapi.api.services import KnowledgeBasesDep
from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
from ragapi.retrieval.knowledge_bases import MAX_NAME_CHARS, KnowledgeBase
from ragapi.schemas import DeletionProgress, KnowledgeBaseCreate, KnowledgeBaseOut, KnowledgeBasePatch

router = APIRouter(prefix="/v1/knowledge-bases", tags=["knowledge bases"])

Ref = Annotated[str, Path(min_length=1, max_length=MAX_NAME_CHARS, description="Its id or its name")]


async def _out(kb: KnowledgeBase, service: KnowledgeBaseService) -> KnowledgeBaseOut:
    deletion = None
    if kb.status == "deleting" and kb.deletion is not None:
        total = int(kb.deletion.get("documents", 0))
        left = await service.documents_left(kb)
        deletion = DeletionProgress(
            documents_total=total, documents_deleted=max(total - left, 0), requested_at=kb.deletion.get("requested_at")
        )
    return KnowledgeBaseOut(
        id=kb.id,
        name=kb.name,
        description=kb.description,
        default=kb.is_default,
        status="deleting" if kb.status == "deleting" else "active",
        settings=kb.settings.stored(),
        embedding_model=kb.embedding_model,
        embedding_dim=kb.embedding_dim,
        vector_backend=kb.vector_backend,
        chunks=kb.chunk_count,
        version=kb.version,
        created_at=kb.created_at,
        deletion=deletion,
    )


def _located(body: KnowledgeBaseOut, status: int) -> JSONResponse:
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers={"Location": f"/v1/knowledge-bases/{body.id}"}
    )


@router.post(
    "",
    status_code=201,
    response_model=KnowledgeBaseOut,
    summary="Create a knowledge base (admin)",
    responses={409: {"description": "The name is taken, or the tenant has MAX_KNOWLEDGE_BASES already"}},
)
async def create(body: KnowledgeBaseCreate, service: KnowledgeBasesDep, tenant: AdminTenant) -> JSONResponse:
    kb = await service.create(tenant, body.name, body.description, body.settings)
    return _located(await _out(kb, service), 201)


@router.get("", response_model=list[KnowledgeBaseOut], summary="The knowledge bases this credential may use")
async def list_all(service: KnowledgeBasesDep, tenant: QueryTenant) -> list[KnowledgeBaseOut]:
    return [await _out(kb, service) for kb in await service.visible(tenant)]


@router.get("/{ref}", response_model=KnowledgeBaseOut, summary="One knowledge base, by id or name")
async def get(ref: Ref, service: KnowledgeBasesDep, tenant: QueryTenant) -> KnowledgeBaseOut:
    return await _out(await service.get(tenant, ref), service)


@router.patch(
    "/{ref}",
    response_model=KnowledgeBaseOut,
    summary="Rename it, describe it, change its settings (admin); cached answers are not served again",
    responses={409: {"description": "The name is taken, or the embedding model of one with documents"}},
)
async def patch(
    ref: Ref, body: KnowledgeBasePatch, service: KnowledgeBasesDep, tenant: AdminTenant
) -> KnowledgeBaseOut:
    changes: dict[str, object] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.description is not None:
        changes["description"] = body.description
    if body.settings is not None:
        changes["settings"] = {key: getattr(body.settings, key) for key in body.settings.model_fields_set}
    return await _out(await service.update(tenant, ref, changes), service)


@router.delete(
    "/{ref}",
    status_code=202,
    response_model=KnowledgeBaseOut,
    summary="Delete it with its documents, chunks, vectors and cached answers (admin), as a job to follow",
)
async def delete(ref: Ref, service: KnowledgeBasesDep, tenant: AdminTenant) -> JSONResponse:
    kb = await service.delete(tenant, ref)
    return _located(await _out(kb, service), 202)
