"""The offline rewrite of a follow-up question into a standalone one for retrieval."""

from __future__ import annotations

import pytest

from ragapi.answering.rewrite import content_terms, leans_on_history, standalone_question


@pytest.mark.parametrize(
    ("history", "question", "carried"),
    [
        (["How do I add an item to a Python list?"], "And how do I remove one?", ["Python", "list", "item"]),
        (["What does os.path.join do?"], "does it work with bytes too?", ["os.path.join"]),
        (
            ["How do I sort a dictionary by value?", "In descending order?"],
            "what about by key?",
            ["descending", "order", "sort", "dictionary", "value"],
        ),
    ],
)
def test_a_follow_up_carries_the_earlier_turns_terms(history: list[str], question: str, carried: list[str]) -> None:
    rewritten = standalone_question(history, question)
    assert rewritten.startswith(question)
    for term in carried:
        assert term in rewritten, (term, rewritten)


def test_the_newest_turn_comes_first_and_the_carry_is_bounded() -> None:
    history = ["tell me about asyncio event loops", "and about threading locks semaphores barriers conditions"]
    rewritten = standalone_question(history, "how do they differ?", max_terms=4)
    assert rewritten == "how do they differ? (threading locks semaphores barriers)"


def test_a_question_that_stands_on_its_own_is_searched_as_it_is() -> None:
    history = ["How do I add an item to a Python list?"]
    question = "How are Unicode strings encoded to UTF-8 bytes?"
    assert not leans_on_history(question)
    assert standalone_question(history, question) == question
    assert standalone_question([], "and this one?") == "and this one?"


def test_content_terms_keep_identifiers_and_drop_the_rest() -> None:
    assert content_terms("What does str.split() do with the maxsplit argument?") == [
        "str.split()",
        "maxsplit",
        "argument",
    ]
