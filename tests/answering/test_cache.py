"""Which remembered answers the exact cache may still serve, and how many tenants' versions it keeps."""

from __future__ import annotations

import pytest

from ragapi.answering.cache import MATCHED_AT, still_matches


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


async def test_the_versions_kept_for_prefetching_are_bounded(app_state, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A process serving many tenants forgets the versions it saw once VERSIONS_KEPT is reached (a
    forgotten tenant's next query is simply not prefetched) instead of growing without limit."""
    import uuid

    import ragapi.answering.cache as answer_cache
    from ragapi.answering.question import Question

    monkeypatch.setattr(answer_cache, "VERSIONS_KEPT", 3)
    cache = app_state.answers.cache
    monkeypatch.setattr(cache, "_versions", {})
    tenants = [uuid.uuid4() for _ in range(3)]
    scope = answer_cache.CacheScope((), True, None)
    for tenant in tenants[:2]:
        cache._remember_version(tenant, None, scope)
    cache._remember_version(tenants[0], ("wiki",), scope)  # the same tenant naming another knowledge base
    cache._remember_version(tenants[0], None, scope)  # a known one updates in place
    assert len(cache._versions) == 3
    cache._remember_version(tenants[2], None, scope)  # one more: the process starts afresh
    assert list(cache._versions) == [(tenants[2], None)]
    question = Question.parse("anything?", None, None, True, app_state.settings)
    assert await cache.prefetch(tenants[0], question, "all") is None  # forgotten: not prefetched
