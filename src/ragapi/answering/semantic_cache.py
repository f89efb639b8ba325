"""Semantic answer cache in PostgreSQL (pgvector), one table with row-level security.

A lookup compares the query embedding only with earlier queries of the *same partition* (tenant,
knowledge-base version, model, prompt version, parameters): the partition is a hard `WHERE` filter,
never a similarity feature, so another tenant's answer cannot be reached at any similarity. A hit also
needs the same salient tokens (numbers, identifiers, capitalised names): "refunds in Germany" and
"refunds in France" embed almost identically but must not share an answer; and questions whose content
words differ ("when does it open" / "close") need a higher similarity than the threshold.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ragapi.core.database import Database
from ragapi.retrieval.bm25 import analyze
from ragapi.retrieval.chunks import vector_literal

_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def salient_tokens(query: str) -> frozenset[str]:
    """Tokens that change the meaning of a near-identical question: anything with a digit, and
    capitalised or upper-case words other than the first."""
    words = _WORD.findall(query)
    salient = {w.lower() for w in words if any(c.isdigit() for c in w)}
    salient |= {w.lower() for w in words[1:] if w[:1].isupper()}
    return frozenset(salient)


def content_terms(query: str) -> frozenset[str]:
    """Stemmed content words (the BM25 analyser), without the stray letters of contractions."""
    return frozenset(t for t in analyze(query) if len(t) > 1)


def may_share_answer(query: str, cached_query: str, similarity: float, threshold: float, margin: float) -> bool:
    """Similar enough, same salient tokens, and where the content words differ (open/close,
    first/last) a stricter similarity by `margin`."""
    if similarity < threshold or salient_tokens(query) != salient_tokens(cached_query):
        return False
    return content_terms(query) == content_terms(cached_query) or similarity >= threshold + margin


NEAREST = 5  # entries compared per lookup: the nearest may fail the guards where the next one passes
# On the driver (`Database.fetch`): the functions enter the tenant's scope themselves.
_NEAREST = "SELECT * FROM semantic_cache_nearest($1, $2, $3, CAST($4::text AS vector), $5)"


_STORE = "SELECT semantic_cache_store($1, $2, $3, $4, $5, CAST($6::text AS vector), $7, CAST($8::text AS jsonb), $9)"


@dataclass(frozen=True, slots=True)
class SemanticSearch:
    """A search of one partition's nearest entries, as admission's statement runs it (`admit_query`,
    migrations 0011 and 0016): the partition was built with `kb_version` (the sum of the versions of the
    knowledge bases it answers from), and the database searches only while that is still theirs."""

    kb_version: int
    partition: str
    vector: Sequence[float]
    limit: int = NEAREST


class SemanticMatch(NamedTuple):
    response: dict[str, Any]
    similarity: float
    expires_in_s: float  # what is left of the stored answer's lifetime


class SemanticCache:
    def __init__(self, db: Database, ttl_s: int, margin: float = 0.02) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.margin = margin

    async def lookup(
        self, tenant_id: uuid.UUID, partition: str, query: str, vector: Sequence[float], threshold: float
    ) -> SemanticMatch | None:
        # one round trip: the function enters the tenant's scope itself (migration 0009), RLS applies
        rows = await self.db.fetch(_NEAREST, tenant_id, partition, len(vector), vector_literal(vector), NEAREST)
        return self.match(query, rows, threshold)

    def match(self, query: str, nearest: Sequence[Mapping[Any, Any]], threshold: float) -> SemanticMatch | None:
        """The first of the nearest entries (query, response, similarity, expires_in) that may share its
        answer with `query`."""
        for row in nearest:
            similarity = float(row["similarity"])
            if may_share_answer(query, row["query"], similarity, threshold, self.margin):
                return SemanticMatch(row["response"], similarity, float(row["expires_in"]))
        return None

    async def store(
        self,
        tenant_id: uuid.UUID,
        kb_ids: Sequence[uuid.UUID],
        kb_version: int,
        partition: str,
        query: str,
        vector: Sequence[float],
        response: dict[str, Any],
    ) -> None:
        """One statement (migrations 0012, 0016): the function enters the tenant's scope, drops the
        entries of older versions of the same knowledge bases and expired ones, and inserts this one."""
        literal, ttl = vector_literal(vector), float(self.ttl_s)
        args = (tenant_id, list(kb_ids), kb_version, partition, len(vector), literal, query, json.dumps(response), ttl)
        await self.db.fetch_row(_STORE, *args)
