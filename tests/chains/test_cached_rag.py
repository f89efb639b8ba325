"""Which remembered answers the exact cache may still serve."""

from __future__ import annotations

import pytest

from chains.cached_rag import MATCHED_AT, still_matches


@pytest.mark.parametrize(
    ("entry", "semantic_on", "threshold", "served"),
    [
        ({"answer": "a"}, False, 0.99, True),  # answered for this very question: policy does not apply
        ({"answer": "a", MATCHED_AT: 0.96}, True, 0.95, True),
        ({"answer": "a", MATCHED_AT: 0.96}, True, 0.97, False),  # the threshold was raised since
        ({"answer": "a", MATCHED_AT: 0.99}, False, 0.95, False),  # semantic caching switched off since
    ],
)
def test_a_remembered_semantic_match_follows_the_policy_now_in_force(
    entry: dict[str, object], semantic_on: bool, threshold: float, served: bool
) -> None:
    assert still_matches(entry, semantic_on, threshold) is served
