"""The sparse vectors must reproduce Okapi BM25 exactly when PostgreSQL takes their dot product."""

from __future__ import annotations

import math
from collections import Counter

from ragapi.retrieval.bm25 import (
    BM25Params,
    analyze,
    document_weights,
    idf,
    parse_sparsevec,
    query_weights,
    term_counts,
    term_id,
    to_sparsevec,
)

CORPUS = [
    "The cat sat on the mat with another cat.",
    "Dogs chase cats in the garden every morning.",
    "Quantum computing uses qubits instead of classical bits.",
    "A garden needs water, sunlight and patience.",
]


def reference_bm25(query: str, docs: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    tokenised = [analyze(d) for d in docs]
    avgdl = sum(map(len, tokenised)) / len(tokenised)
    n = len(docs)
    scores = []
    for tokens in tokenised:
        tf = Counter(tokens)
        score = 0.0
        for term in analyze(query):
            df = sum(term in t for t in tokenised)
            if not df:
                continue
            w = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += w * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(tokens) / avgdl))
        scores.append(score)
    return scores


def test_analyzer_stems_and_drops_stop_words() -> None:
    assert analyze("The cats were running in the Gardens!") == ["cat", "run", "garden"]


def test_dot_product_equals_bm25() -> None:
    params = BM25Params()
    counts = [term_counts(d) for d in CORPUS]
    avgdl = sum(sum(c.values()) for c in counts) / len(counts)
    doc_vectors = [document_weights(c, avgdl, params) for c in counts]
    df: Counter[int] = Counter()
    for c in counts:
        df.update(c.keys())
    for query in ["cat in the garden", "qubits", "water for dogs"]:
        q = query_weights(term_counts(query), df, len(CORPUS))
        ours = [sum(w * d.get(t, 0.0) for t, w in q.items()) for d in doc_vectors]
        expected = reference_bm25(query, CORPUS)
        assert [round(x, 9) for x in ours] == [round(x, 9) for x in expected]


def test_rarer_terms_weigh_more() -> None:
    assert idf(1, 100) > idf(50, 100) > 0


def test_sparsevec_text_round_trip() -> None:
    weights = {term_id("alpha"): 1.5, term_id("beta"): 0.25}
    literal = to_sparsevec(weights)
    assert literal.endswith("/1000000000")
    assert parse_sparsevec(literal) == weights
    assert parse_sparsevec("{}/1000000000") == {}


def test_unknown_query_terms_are_dropped() -> None:
    assert query_weights(term_counts("zebra"), {}, 10) == {}
