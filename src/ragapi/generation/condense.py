"""A conversation's follow-up question made standalone before retrieval: what condensers read.

"And how do I remove one?" finds nothing by itself; what "one" is lives in the turns before it. A
conversation keeps each earlier exchange as a `Turn`: the user's question, the answer, and the titles of
the answer's citations. The offline rewrite (`ragapi.answering.rewrite`) reads the questions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""
    sources: tuple[str, ...] = ()  # the title of each of the answer's citations, [1] first
