"""The offline rewrite of a follow-up question into a standalone one for retrieval."""

from __future__ import annotations

import pytest

from ragapi.answering.rewrite import (
    ANCHOR_TERMS,
    MAX_CARRIED_TERMS,
    content_terms,
    leans_on_history,
    standalone_question,
)


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


def test_the_subject_reaches_a_later_turn_through_the_turn_between() -> None:
    # the second turn names no object; the third finds "Python object" in the second's standalone form
    history = ["How do I save an arbitrary Python object to a file?", "Is it safe if the file came from the internet?"]
    rewritten = standalone_question(history, "Which version of the format should I use?")
    assert "Python" in rewritten and "object" in rewritten, rewritten


def test_a_question_that_reads_as_self_contained_gets_only_an_anchor() -> None:
    history = ["How do I read an INI style configuration file with sections and options?"]
    question = "How are Unicode strings encoded to UTF-8 bytes?"
    assert not leans_on_history(question)
    rewritten = standalone_question(history, question)
    assert rewritten == f"{question} (read INI style configuration file)"
    assert len(content_terms(rewritten)) - len(content_terms(question)) == ANCHOR_TERMS
    leaning = standalone_question(history, "and how do I write one?")
    assert len(content_terms(leaning)) - len(content_terms("and how do I write one?")) <= MAX_CARRIED_TERMS
    assert "sections" in leaning and "options" in leaning  # more than the anchor's five


def test_without_history_or_anything_to_add_the_question_is_unchanged() -> None:
    assert standalone_question([], "and this one?") == "and this one?"
    assert standalone_question(["How do I sort a list?"], "How do I sort a list?") == "How do I sort a list?"


def test_content_terms_keep_identifiers_and_drop_the_rest() -> None:
    assert content_terms("What does str.split() do with the maxsplit argument?") == [
        "str.split()",
        "maxsplit",
        "argument",
    ]
    # words any question uses say nothing about its subject
    assert content_terms("How do I get a value as an integer?") == ["value", "integer"]
    assert leans_on_history("How do I get a value as an integer?")


def test_a_contraction_counts_as_the_word_it_shortens() -> None:
    # "doesn't" is "does", not a content word "doesn"; "it's" points back like "it"
    assert content_terms("Why doesn't the glob pattern match hidden files?") == [
        "glob",
        "pattern",
        "match",
        "hidden",
        "files",
    ]
    assert content_terms("Python\u2019s str.split() can't split on bytes") == [
        "Python",
        "str.split()",
        "split",
        "bytes",
    ]
    assert leans_on_history("What if it's much larger than memory?")
