"""Models are knowledge bases: a model's id is a knowledge base's name (or its id, which always works, and
is what a name containing '+' is listed as), and `a+b` asks knowledge bases `a` and `b` at once, their
results fused into one ranking as when a question names several; the first one's own settings apply."""

from __future__ import annotations

from ragapi.api.openai_compat.schemas import ModelCard, ModelList
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
from ragapi.retrieval.knowledge_bases import KnowledgeBase, parse_refs
from ragapi.tenants.context import TenantContext

JOIN = "+"


def refs_of(model: str) -> tuple[str, ...]:
    """The knowledge bases a model name means (ids or names, each once); InvalidInput naming `model`."""
    if not model.strip():
        raise InvalidInput("model must name a knowledge base")
    refs = parse_refs(model.split(JOIN), field_name="model")
    if refs is None:  # parse_refs returns None for None only
        raise InvalidInput("model must name a knowledge base")
    return refs


def model_id(kb: KnowledgeBase) -> str:
    return str(kb.id) if JOIN in kb.name else kb.name


def card(kb: KnowledgeBase, name: str | None = None) -> ModelCard:
    created = int(kb.created_at.timestamp()) if kb.created_at is not None else 0
    return ModelCard(id=name or model_id(kb), created=created, knowledge_base_id=str(kb.id), description=kb.description)


def unknown(model: str) -> NotFound:
    return NotFound(f"The model '{model[:200]}' does not exist or you do not have access to it")


async def listed(knowledge_bases: KnowledgeBaseService, tenant: TenantContext) -> ModelList:
    """The knowledge bases this credential may use (the tenant's default once something was ingested)."""
    found = await knowledge_bases.visible(tenant)
    return ModelList(data=[card(kb) for kb in found if kb.status == "active"])


async def described(knowledge_bases: KnowledgeBaseService, tenant: TenantContext, model: str) -> ModelCard:
    """One model, under the name asked for (several joined: described by the first)."""
    try:
        refs = refs_of(model)
        kbs = [await knowledge_bases.get(tenant, ref) for ref in refs]
    except (InvalidInput, NotFound) as exc:
        raise unknown(model) from exc
    if any(kb.status != "active" for kb in kbs):
        raise unknown(model)
    return card(kbs[0], model.strip())
