"""A follow-up question made standalone for retrieval, without a language model.

"And how do I remove one?" finds nothing by itself: what "one" is lives in the turns before it. The
offline rewrite carries the salient terms of recent turns into the retrieval query, the newest first,
when the question leans on them: it is short on content words of its own, or refers back ("it", "them",
"that one", "what about ..."). A question that stands on its own is searched as it is, so that changing
the subject does not drag the old one along.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragapi.retrieval.bm25 import STOPWORDS

_WORD = re.compile(r"[A-Za-z_][\w.]*(?:\(\))?|\d[\w.]*")
# Words that point back to something named earlier, and openings that continue the previous question.
_ANAPHORA = frozenset(
    {"it", "its", "they", "them", "their", "this", "that", "these", "those", "one", "ones", "there", "such", "same"}
)
_CONTINUATIONS = ("and ", "also ", "what about", "how about", "and what", "and how", "or ", "but ", "then ")
_QUESTION_WORDS = frozenset({"what", "how", "why", "when", "where", "which", "who", "whom", "whose", "does", "do"})
SELF_CONTAINED_TERMS = 3  # content words from which a question counts as standing on its own
MAX_CARRIED_TERMS = 8  # terms carried over from earlier turns at most


def content_terms(text: str) -> list[str]:
    """The words that carry a text's topic, in order, each once: not stop words, not question words, not
    pronouns; identifiers (`str.split`, `os.path`, `__init__`) kept as they are written."""
    seen: set[str] = set()
    terms = []
    for word in _WORD.findall(text):
        key = word.lower()
        if key in STOPWORDS or key in _ANAPHORA or key in _QUESTION_WORDS or len(key) < 2 or key in seen:
            continue
        seen.add(key)
        terms.append(word)
    return terms


def leans_on_history(question: str) -> bool:
    lowered = " " + question.lower().strip()
    words = {w.lower() for w in _WORD.findall(question)}
    return (
        len(content_terms(question)) < SELF_CONTAINED_TERMS
        or bool(words & _ANAPHORA)
        or lowered.lstrip().startswith(_CONTINUATIONS)
    )


def standalone_question(history: Sequence[str], question: str, max_terms: int = MAX_CARRIED_TERMS) -> str:
    """`question` with the salient terms of the earlier user turns in `history` (oldest first) that it
    lacks, newest turn first, when it leans on them; else `question` as it is."""
    if not history or not leans_on_history(question):
        return question
    own = {t.lower() for t in content_terms(question)}
    carried: list[str] = []
    for turn in reversed(history):
        for term in content_terms(turn):
            if term.lower() not in own and len(carried) < max_terms:
                own.add(term.lower())
                carried.append(term)
    return f"{question} ({' '.join(carried)})" if carried else question
