"""BM25 as sparse vectors that PostgreSQL can score with pgvector's `sparsevec` inner product.

Okapi BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009)
factorises into a document side and a query side:

    score(q, d) = sum_t  idf(t) * tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 - b + b·|d|/avgdl))

The document vector stores the saturated, length-normalised term frequency; the query vector stores
idf(t) = ln(1 + (N - df + 0.5)/(df + 0.5)) from the tenant's own statistics at query time, so a
dot product is exactly BM25. avgdl is taken when the chunk is written (it drifts slightly as the
knowledge base grows; re-indexing refreshes it). Terms are hashed into a fixed space, so no vocabulary
table is needed; with 10^9 slots collisions are negligible.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b

import Stemmer

SPARSE_DIM = 1_000_000_000  # pgvector's sparsevec limit
_TOKEN = re.compile(r"\w+", re.UNICODE)

# A conventional English stop list (as in Lucene/bm25s): words that carry no topical signal.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def term_id(term: str) -> int:
    """Stable id in [1, SPARSE_DIM) for a normalised term (stable across processes and releases)."""
    digest = int.from_bytes(blake2b(term.encode(), digest_size=8).digest(), "big")
    return digest % (SPARSE_DIM - 1) + 1


def analyze(text: str) -> list[str]:
    """Lower-case, split on word characters, drop stop words, Snowball-stem."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return list(_stemmer.stemWords(words))


def term_counts(text: str) -> Counter[int]:
    return Counter(term_id(t) for t in analyze(text))


@dataclass(frozen=True, slots=True)
class BM25Params:
    k1: float = 1.2
    b: float = 0.75


def document_weights(counts: Mapping[int, int], avgdl: float, params: BM25Params) -> dict[int, float]:
    length = sum(counts.values())
    norm = params.k1 * (1 - params.b + params.b * length / max(avgdl, 1e-9))
    return {t: tf * (params.k1 + 1) / (tf + norm) for t, tf in counts.items()}


def idf(df: int, n: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def query_weights(counts: Mapping[int, int], df: Mapping[int, int], n: int) -> dict[int, float]:
    """Terms absent from the knowledge base are dropped: they cannot match anything."""
    return {t: qtf * idf(df[t], n) for t, qtf in counts.items() if df.get(t, 0) > 0}


def to_sparsevec(weights: Mapping[int, float]) -> str:
    """pgvector's text form `{i:v,...}/dim` (1-based indices, sorted)."""
    body = ",".join(f"{i}:{v:.6g}" for i, v in sorted(weights.items()) if v != 0.0)
    return f"{{{body}}}/{SPARSE_DIM}"


def parse_sparsevec(literal: str) -> dict[int, float]:
    """Weights from pgvector's text form (for statistics on delete and for moving vectors elsewhere)."""
    body = literal[literal.index("{") + 1 : literal.index("}")]
    return {int(i): float(v) for i, v in (pair.split(":", 1) for pair in body.split(",") if pair)}


def kb_prefix(knowledge_base_id: uuid.UUID) -> int:
    """The high half of a knowledge base's term keys: the first 31 bits of its id (migration 0020)."""
    return (int.from_bytes(knowledge_base_id.bytes[:4], "big") & 0x7FFFFFFF) << 32


def term_keys(knowledge_base_id: uuid.UUID, terms: Iterable[int]) -> list[int]:
    """The keys of a chunk's (or a query's) terms in the knowledge base's inverted index (`chunks.term_keys`):
    one posting list per (knowledge base, term)."""
    prefix = kb_prefix(knowledge_base_id)
    return [prefix | t for t in terms]
