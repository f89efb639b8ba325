"""A tenant's console pages: what they show is read through the same services as the JSON API, in the
signed-in user's tenant; what they change, the page's script sends to the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ragapi.api.console.rendering import ConsoleRoute, render
from ragapi.api.console.session import ConsoleUser
from ragapi.api.dependencies import authorize
from ragapi.api.services import KnowledgeBasesDep
from ragapi.tenants.context import Scope

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/knowledge-bases")
async def knowledge_bases(request: Request, principal: ConsoleUser, service: KnowledgeBasesDep) -> Response:
    tenant = await authorize(request, Scope.QUERY)
    return render(request, "knowledge_bases.html", principal, knowledge_bases=await service.visible(tenant))
