"""A follow-up question made standalone for retrieval, without a language model.

"And how do I remove one?" finds nothing by itself: what "one" is lives in the turns before it. How much
of the conversation a follow-up gets depends on how it reads:

- One that leans on the history (few content words of its own, a pointer back such as "it" or "that
  one", an opening such as "and ..." or "what about ...") is searched with whole questions: the one that
  set the subject, as it was searched, then the one just before it (when that is another), then itself.
  An elliptical turn is about what was just asked, and whole sentences keep what the embedding reads
  from the relations between words; a bag of the earlier turns' salient terms, which this rewrite used to
  carry, lost follow-ups that the turns concatenated found. A third turn so gets the first two in full,
  as concatenation would; the subject's question keeps a long run of elliptical turns bounded (three
  questions at most).
- One that reads as self-contained may open a new subject, which the old one should not swamp: it is
  searched as asked with at most ANCHOR_TERMS terms of the previous turn's search appended, and sets the
  subject of the turns after it. Concatenating every turn drags a new question back to the old subject;
  appending nothing loses the follow-ups that only look complete ("What if the fields are separated by
  semicolons rather than commas?" right after a question about CSV files): on the benchmark's tuning
  set, 4 of 103.
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
_CONTINUATIONS = ("and ", "also ", "what about", "how about", "or ", "but ", "then ")
_QUESTION_WORDS = frozenset({"what", "how", "why", "when", "where", "which", "who", "whom", "whose", "does", "do"})
# Words a question uses whatever its subject: they say nothing about what it is about.
_GENERIC = frozenset(
    """get gets got getting make makes made making use uses used using want wants need needs try tried
    work works happen happens happened go goes went put take takes give gives let see say tell know come
    came way ways thing things something anything possible easiest best good better right instead also
    just really able sure like""".split()  # noqa: SIM905 - a list of words reads best as words
)
SELF_CONTAINED_TERMS = 3  # content words from which a question reads as standing on its own
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


def anchored(question: str, context: str, anchor_terms: int = ANCHOR_TERMS) -> str:
    """`question` followed by at most `anchor_terms` terms it lacks from `context`, in parentheses; as it is
    when nothing is added."""
    carried = carried_terms(question, context, anchor_terms)
    return f"{question} ({' '.join(carried)})" if carried else question


def standalone_question(history: Sequence[str], question: str, anchor_terms: int = ANCHOR_TERMS) -> str:
    """`question` made standalone from the earlier user questions in `history`, oldest first, as every turn
    in order is (see the module's docstring)."""
    subject = ""  # the newest turn that read as self-contained (or the first), as it was searched
    latest = ""  # the newest turn after it, as asked, if there is one
    searched = ""  # the turn before, as it was searched
    for turn in (*history, question):
        if subject and leans_on_history(turn):
            searched = " ".join(dict.fromkeys(part for part in (subject, latest, turn) if part))  # each once
            latest = turn
        else:
            searched = subject = anchored(turn, searched, anchor_terms)
            latest = ""
    return searched
