"""What is asked, and by whom: a question validated once, at the edge of every surface, into a frozen value
that every later step takes as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ragapi.core import inputs
from ragapi.core.errors import InvalidInput
from ragapi.core.settings import Settings
from ragapi.retrieval.filters import Filters, validate_filters
from ragapi.retrieval.knowledge_bases import parse_refs
from ragapi.tenants.context import TenantContext


class Surface(StrEnum):
    """Where a question came in (the query log and traces say so)."""

    REST = "rest"
    SSE = "sse"
    LANGSERVE = "langserve"
    CLI = "cli"
    OPENAI = "openai"  # the OpenAI-compatible chat completions
    MCP = "mcp"  # the Model Context Protocol server's tools


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    top_k: int | None  # None: the knowledge base's own default, else DEFAULT_TOP_K
    filters: Filters
    use_cache: bool = True  # false: this request neither reads nor fills the answer cache
    knowledge_bases: tuple[str, ...] | None = None  # ids or names, as `parse_refs` keeps them; None: the default

    @classmethod
    def parse(
        cls,
        text: str,
        top_k: int | None,
        filters: Mapping[str, Any] | None,
        use_cache: bool,
        limits: Settings,
        knowledge_bases: Any = None,
        field: str = "query",
    ) -> Question:
        """The one validation of a question: InvalidInput naming the field (its message starts with it;
        `field` is what the surface calls the text) and the limit a value breaks."""
        inputs.check(text, field)
        text = text.strip()
        if not text:
            raise InvalidInput(f"{field} must not be empty")
        if len(text) > limits.max_query_chars:
            raise InvalidInput(f"{field} is longer than {limits.max_query_chars} characters (MAX_QUERY_CHARS)")
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limits.max_top_k
        ):
            raise InvalidInput(f"top_k must be an integer from 1 to {limits.max_top_k} (MAX_TOP_K)")
        try:
            valid = validate_filters(dict(filters) if filters else None)
        except InvalidInput as exc:
            raise InvalidInput(exc.detail if exc.detail.startswith("filters") else f"filters: {exc.detail}") from exc
        return cls(text, top_k, valid, use_cache, parse_refs(knowledge_bases))


@dataclass(frozen=True, slots=True)
class Condensing:
    """What a chat model spent making a conversation's follow-up standalone, before it was answered: counted
    in the answer's usage and the query log, priced as that model's tokens."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """A question and who asks it: the tenant scope comes only from the verified credential."""

    tenant: TenantContext
    surface: Surface
    question: Question
    condensing: Condensing | None = None  # the follow-up's standalone question cost tokens
