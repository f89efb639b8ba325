"""The offline rewrite of a follow-up question into a standalone one for retrieval."""

from __future__ import annotations

import pytest

from ragapi.answering.rewrite import (
    ANCHOR_TERMS,
    content_terms,
    leans_on_history,
    standalone_question,
)


@pytest.mark.parametrize(
    ("history", "question"),
    [
        (["How do I add an item to a Python list?"], "And how do I remove one?"),
        (["What does os.path.join do?"], "does it work with bytes too?"),
        (["How do I copy an entire directory tree?"], "Can I leave out some files while doing it?"),
    ],
)
def test_an_elliptical_follow_up_is_searched_with_the_question_it_leans_on(history: list[str], question: str) -> None:
    assert leans_on_history(question)
    assert standalone_question(history, question) == f"{history[0]} {question}"


def test_a_third_turn_gets_the_subject_through_the_turn_between() -> None:
    # the second turn names no object; the third is searched with the first two as asked
    history = ["How do I save an arbitrary Python object to a file?", "Is it safe if the file came from the internet?"]
    question = "Which version of the format should I use?"
    assert standalone_question(history, question) == " ".join([*history, question])


def test_a_long_run_of_elliptical_turns_keeps_the_subject_and_the_latest_turn() -> None:
    history = ["How do I sort a dictionary by value?", "In descending order?", "what about by key?", "and by length?"]
    rewritten = standalone_question(history, "and reversed?")
    assert rewritten == "How do I sort a dictionary by value? and by length? and reversed?"


def test_a_new_self_contained_question_is_not_dragged_back_to_the_old_subject() -> None:
    history = ["How do I read an INI style configuration file with sections and options?"]
    question = "How are Unicode strings encoded to UTF-8 bytes?"
    assert not leans_on_history(question)
    rewritten = standalone_question(history, question)
    # searched as asked, with at most an anchor of the old subject's terms, never the old question itself
    assert rewritten == f"{question} (read INI style configuration file)"
    assert len(content_terms(rewritten)) - len(content_terms(question)) == ANCHOR_TERMS
    # and it is the new subject that the next elliptical turn leans on
    follow_up = standalone_question([*history, question], "And decoded back?")
    assert follow_up == f"{rewritten} And decoded back?"
    assert history[0] not in follow_up


def test_a_follow_up_that_only_looks_complete_keeps_an_anchor_to_its_subject() -> None:
    history = ["How do I read a CSV file into dictionaries keyed by the header row?"]
    question = "What if the fields are separated by semicolons rather than commas?"
    assert not leans_on_history(question)
    assert "CSV" in standalone_question(history, question)


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
