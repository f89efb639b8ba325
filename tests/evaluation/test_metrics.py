from __future__ import annotations

import math

from ragapi.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k


def test_ndcg_perfect_and_partial() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 1}) == 1.0
    assert math.isclose(ndcg_at_k(["x", "a"], {"a": 1}), 1 / math.log2(3))
    assert ndcg_at_k(["x"], {}) == 0.0


def test_recall_and_mrr() -> None:
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, 100) == 2 / 3
    assert mrr_at_k(["x", "y", "a"], {"a": 1}) == 1 / 3
    assert mrr_at_k(["x"], {"a": 1}) == 0.0


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([], 95) == 0.0
