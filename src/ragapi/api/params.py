"""Query parameters several routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from ragapi.retrieval.knowledge_bases import MAX_NAME_CHARS

KnowledgeBaseQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="The knowledge base (id or name); none: the tenant's default, or the key's only one",
    ),
]
KnowledgeBaseFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=MAX_NAME_CHARS, description="Only this knowledge base (id or name)"),
]
