"""The model's cost per query length (`ragapi.minilm.cost`); timed on this host in
tests/embedding/test_bundled.py, where it sizes the queries embedded on the event loop."""

from __future__ import annotations

from ragapi.minilm import QueryCost


def test_a_budget_buys_the_word_pieces_left_after_the_fixed_cost() -> None:
    cost = QueryCost(fixed=0.5, per_token=0.25)
    assert cost.tokens_within(3.0) == 10
    assert cost.tokens_within(3.2) == 10  # whole word pieces only
    assert cost.tokens_within(0.4) == 0  # below the fixed cost: none
