"""What an answer is, as one typed model every surface serialises, and the events it streams as.

A miss streams `Sources` (as soon as retrieval has them), `Token`s (as the answerer writes), then
`Finished` with the whole `Answer`; a cache hit is one `Finished`. REST returns the `Answer`; SSE sends
the events as `sources`, `token` and `done`; LangServe streams them as the chunks of its runnable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # the wire models stay light for the client (ragapi.client), which has no index
    from ragapi.retrieval.chunks import Hit

SNIPPET_CHARS = 300


class Citation(BaseModel):
    n: int = Field(description="The number used in the answer's [n] markers")
    document_id: uuid.UUID
    chunk_id: uuid.UUID
    title: str
    snippet: str
    score: float
    page: int | None = None

    @classmethod
    def of(cls, n: int, hit: Hit) -> Citation:
        page = hit.metadata.get("page")
        return cls(
            n=n,
            document_id=hit.document_id,
            chunk_id=hit.chunk_id,
            title=hit.title,
            snippet=hit.text[:SNIPPET_CHARS],
            score=round(hit.score, 6),
            page=page if isinstance(page, int) else None,
        )


class Passage(Citation):
    """A source a search found: its citation, and its whole text (a citation's snippet is its start)."""

    text: str

    @classmethod
    def found(cls, n: int, hit: Hit) -> Passage:
        return cls(**Citation.of(n, hit).model_dump(), text=hit.text)


class Usage(BaseModel):
    """What answering cost in tokens, the chat model's condensing of a follow-up included (absent on cache
    hits of questions that cost nothing)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedding_tokens: int = 0
    estimated: bool = Field(default=False, description="Counted here (4 characters a token): the provider sent none")


class Searched(BaseModel):
    """What a search found (`POST /v1/search`, MCP's `search`): its passages, and the query id it is
    logged under (feedback rates its passages by it)."""

    query_id: uuid.UUID
    passages: list[Passage]
    timings_ms: dict[str, float]
    usage: Usage


class Answer(BaseModel):
    query_id: uuid.UUID
    answer: str
    mode: str = Field(description="'generative' (LLM) or 'extractive' (quoted sentences, no LLM)")
    model: str
    citations: list[Citation]
    cached: Literal[False, "exact", "semantic"] = Field(description='false, "exact" or "semantic"')
    timings_ms: dict[str, float]
    usage: Usage | None = Field(
        default=None,
        description="prompt_tokens, completion_tokens (a follow-up's condensing included), embedding_tokens, "
        "estimated; absent on cache hits that cost nothing",
    )


@dataclass(frozen=True, slots=True)
class Sources:
    query_id: uuid.UUID
    citations: list[Citation]
    mode: str
    model: str


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    answer: Answer


AnswerEvent = Sources | Token | Finished
