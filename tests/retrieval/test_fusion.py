from __future__ import annotations

import pytest

from ragapi.retrieval.chunks import Candidate
from ragapi.retrieval.fusion import convex_fusion, reciprocal_rank_fusion


def hit(name: str, score: float) -> Candidate:
    return Candidate(name, score)


def names(candidates: list[Candidate]) -> list[str]:
    return [str(c.key) for c in candidates]


def test_rrf_rewards_agreement() -> None:
    dense = [hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)]
    sparse = [hit("c", 12.0), hit("b", 11.0), hit("d", 3.0)]
    fused = reciprocal_rank_fusion([dense, sparse], k=60)
    assert set(names(fused)[:2]) == {"b", "c"}  # both lists agree on b and c
    assert set(names(fused)) == {"a", "b", "c", "d"}


def test_convex_keeps_score_margins() -> None:
    dense = [hit("a", 0.95), hit("b", 0.40), hit("c", 0.39)]
    sparse = [hit("b", 10.0), hit("c", 9.9), hit("a", 9.8), hit("d", 1.0)]
    fused = convex_fusion(dense, sparse, dense_weight=0.5)
    assert names(fused)[0] == "a"  # a's dense lead is large, its sparse deficit tiny
    only_sparse = convex_fusion(dense, sparse, dense_weight=0.0)
    assert names(only_sparse) == ["b", "c", "a", "d"]


def test_convex_handles_one_sided_and_empty_lists() -> None:
    assert names(convex_fusion([], [hit("x", 2.0)], 0.5)) == ["x"]
    assert convex_fusion([], [], 0.5) == []
    with pytest.raises(ValueError):
        convex_fusion([], [], 1.5)
