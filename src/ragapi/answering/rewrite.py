"""A follow-up question made standalone for retrieval, without a language model.

"And how do I remove one?" finds nothing by itself: what "one" is lives in the turns before it. The
offline rewrite appends the salient terms of the conversation so far to the question:

- The context of a turn is the previous turn *as it was searched*: its own standalone question, which
  carries the turns before it. A subject named in the first turn reaches the third through the second,
  and fades as newer turns push it out of the bounded carry.
- How much is carried depends on how the question reads. One that leans on the history (few content
  words of its own, a pointer back such as "it" or "that one", an opening such as "and ..." or "what
  about ...") gets up to MAX_CARRIED_TERMS. One that reads as self-contained gets up to ANCHOR_TERMS: it
  may open a new subject, which the old one should not swamp, or be an ellipsis that only looks complete
  ("How do I get a value as an integer?" right after a question about INI files), which is lost
  without it. Leaving such questions alone lost 5 of 103 follow-ups of the benchmark's tuning set.
- A question's content words are its words that are not stop words, question words, pointers back, or
  words any question uses whatever its subject ("get", "make", "use", "want", ...); a contraction counts
  as the word it shortens ("doesn't" as "does", "it's" as "it"); identifiers (`str.split`, `os.path`,
  `__init__`) are kept as written.

The titles of the earlier answers' citations are not used: on the benchmark's tuning set (each earlier
turn's top hits standing for its answer's citations) they ranked the answering page higher but lost
follow-ups, because a wrong hit of an earlier turn comes back as a wrong title.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragapi.retrieval.bm25 import STOPWORDS

# A word, an identifier (`os.path.join`, `str.split()`), a number, and what a contraction hangs on a word
# ("doesn't", "it's", "we'll", with a straight or a typographic apostrophe).
_WORD = re.compile(r"([A-Za-z_](?:[\w.]*\w)?(?:\(\))?)(?:['\u2019]([A-Za-z]+))?|\d(?:[\w.]*\w)?")
# Words that point back to something named earlier, and openings that continue the previous question.
_ANAPHORA = frozenset(
    {"it", "its", "they", "them", "their", "this", "that", "these", "those", "one", "ones", "there", "such", "same"}
)
_CONTINUATIONS = ("and ", "also ", "what about", "how about", "and what", "and how", "or ", "but ", "then ")
_QUESTION_WORDS = frozenset({"what", "how", "why", "when", "where", "which", "who", "whom", "whose", "does", "do"})
# Words a question uses whatever its subject: they say nothing about what it is about.
_GENERIC = frozenset(
    """get gets got getting make makes made making use uses used using want wants need needs try tried
    work works happen happens happened go goes went put take takes give gives let see say tell know come
    came way ways thing things something anything possible easiest best good better right instead also
    just really able sure like""".split()  # noqa: SIM905 - a list of words reads best as words
)
SELF_CONTAINED_TERMS = 3  # content words from which a question reads as standing on its own
MAX_CARRIED_TERMS = 8  # terms carried into a question that leans on the history, at most
ANCHOR_TERMS = 5  # terms carried into a question that reads as self-contained, at most


def words(text: str) -> list[tuple[str, str]]:
    """(word as written, its key) for each word of `text`: the key is lower-cased, a contraction's
    ending dropped ("it's" -> "it"), a negated one's too ("doesn't" -> "does", "can't" -> "can")."""
    found = []
    for match in _WORD.finditer(text):
        word, ending = match.group(1) or match.group(0), match.group(2)
        key = word.lower()
        if ending and ending.lower() == "t" and key.endswith("n"):
            key = {"won": "will", "can": "can", "shan": "shall"}.get(key, key[:-1])
        found.append((word, key))
    return found


def content_terms(text: str) -> list[str]:
    """The words that carry a text's topic, in order, each once (see the module's docstring)."""
    seen: set[str] = set()
    terms = []
    for word, key in words(text):
        if len(key) < 2 or key in seen or key in STOPWORDS or key in _ANAPHORA or key in _QUESTION_WORDS:
            continue
        if key in _GENERIC:
            continue
        seen.add(key)
        terms.append(word)
    return terms


def leans_on_history(question: str) -> bool:
    """Whether the question reads as needing the turns before it: few content words, a pointer back, or an
    opening that continues the previous question."""
    keys = {key for _, key in words(question)}
    return (
        len(content_terms(question)) < SELF_CONTAINED_TERMS
        or bool(keys & _ANAPHORA)
        or question.lower().strip().startswith(_CONTINUATIONS)
    )


def carried_terms(question: str, context: str, limit: int) -> list[str]:
    """The content terms of `context` that `question` lacks, in order, at most `limit`."""
    own = {t.lower() for t in content_terms(question)}
    return [t for t in content_terms(context) if t.lower() not in own][:limit]


def standalone_question(
    history: Sequence[str],
    question: str,
    max_terms: int = MAX_CARRIED_TERMS,
    anchor_terms: int = ANCHOR_TERMS,
) -> str:
    """`question` made standalone from the earlier user questions in `history`, oldest first: each turn in
    order takes the terms it lacks from the standalone form of the one before it (see `with_context`)."""
    context = ""
    for earlier in history:
        context = with_context(earlier, context, max_terms, anchor_terms)
    return with_context(question, context, max_terms, anchor_terms)


def with_context(question: str, context: str, max_terms: int, anchor_terms: int) -> str:
    """`question` followed by the terms it lacks from `context` in parentheses: up to `max_terms` when it
    leans on the history, `anchor_terms` when it reads as self-contained; as it is when nothing is added."""
    limit = max_terms if leans_on_history(question) else anchor_terms
    carried = carried_terms(question, context, limit)
    return f"{question} ({' '.join(carried)})" if carried else question
