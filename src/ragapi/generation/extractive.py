"""Which sentences of the sources an extractive answer quotes: small pure functions, the embedding left to
the caller (`ExtractiveAnswerer` in `answerers`).

1. `split_sentences`: a source's text as sentences. Lines wrapped inside a sentence (PDF text, hard-wrapped
   plain text, HTML source) are joined first, so a sentence is quoted whole rather than line by line.
2. `candidates`: the sentences worth comparing with the question: not a question themselves, at least
   `MIN_WORDS` words, each once, and at most `limit` of them, those sharing most of the question's terms
   first (each candidate costs an embedding).
3. `term_scores`: the share of the question's terms a sentence contains, each term weighted by its inverse
   sentence frequency among the candidates (BM25's idf, `ragapi.retrieval.bm25.idf`), so that a term every
   candidate shares ("depot" in sixty depot records) counts for little and the one that tells them apart
   ("5") for much.
4. `select`: each sentence scored `SEMANTIC_WEIGHT` x cosine similarity to the question + the rest x its
   term score (both about 0-1); the best is quoted with every sentence within `margin` of it, at most
   `max_sentences`, never padded. Nothing is quoted when no sentence's similarity reaches `MIN_SIMILARITY`
   (set for the bundled model): such sources do not answer the question.

A margin rather than a fixed count is the point: asked "What does depot 5 store?" over records that differ
only in their numbers, the sentences about depots 43 and 4 score far below depot 5's and are left out,
while a question whose answer takes two sentences keeps both when both are about as close to it. The
margin, the weight and the floor were measured on labelled questions (docs/benchmarks.md, "Extractive
answers").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ragapi.retrieval.bm25 import analyze, idf
from ragapi.retrieval.chunks import Hit

EXTRACTIVE_SELECTION = "v2"  # the rule below (part of the answer cache's partition: a new rule answers afresh)
SEMANTIC_WEIGHT = 0.5  # similarity and terms count alike (0.3 to 0.7 measured within noise of each other)
MIN_WORDS = 3  # shorter units are headings, labels and fragments, not statements
MIN_SIMILARITY = 0.3  # sources none of whose sentences come this close to the question do not answer it
EMBEDDED_CHARS = 320  # a sentence's meaning is taken from its start: at most ~80 word pieces to embed

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[“‘])")
_PARAGRAPH = re.compile(r"\n\s*\n")
_ENDS_STATEMENT = re.compile(r"[.!?:;¶][\"')\]”’]*$")
_STARTS_ITEM = re.compile(r"^(?:[-*•·▪#>|]|\d{1,3}[.)]\s)")
_QUESTION = re.compile(r"\?[\"')\]”’]*(?:\s*¶)?$")
_WORD = re.compile(r"\w+")
WRAPPED_LINE_CHARS = 40  # a line at least this long that ends mid-sentence was wrapped, not a heading


def _continues(previous: str, line: str) -> bool:
    """Whether `line` goes on with the sentence `previous` left open (a wrapped line)."""
    if _ENDS_STATEMENT.search(previous) or _STARTS_ITEM.match(line) or previous.startswith("#"):
        return False
    return line[0].islower() or len(previous) >= WRAPPED_LINE_CHARS


def split_sentences(text: str) -> list[str]:
    """Sentences, in order: paragraphs (blank lines) and lines are units of their own unless a line goes
    on with the sentence the one before left open; each unit is then cut after `.`, `!` or `?`."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        units: list[str] = []
        for line in (raw.strip() for raw in paragraph.split("\n")):
            if not line:
                continue
            if units and _continues(units[-1], line):
                units[-1] = f"{units[-1]} {line}"
            else:
                units.append(line)
        for unit in units:
            sentences.extend(s.strip() for s in _SENTENCE_END.split(unit))
    return [s for s in sentences if len(s) > 1]


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    source: int  # the citation number of its source, from 1
    position: int  # its place in the source's text
    terms: frozenset[str]  # its analysed terms (`ragapi.retrieval.bm25.analyze`)


def candidates(query_terms: frozenset[str], hits: Sequence[Hit], limit: int) -> list[Sentence]:
    """The sentences of `hits` to score: statements of `MIN_WORDS` words or more, each once, at most
    `limit`: those sharing the most question terms (idf-weighted), then the better-ranked source's, then
    the earlier."""
    split = [split_sentences(hit.text) for hit in hits]
    documents: dict[uuid.UUID, list[str]] = {}
    for hit, sentences in zip(hits, split, strict=True):
        documents.setdefault(hit.document_id, []).extend(sentences)
    found: list[Sentence] = []
    seen: set[str] = set()
    for source, (hit, sentences) in enumerate(zip(hits, split, strict=True), start=1):
        for position, text in enumerate(sentences):
            if text in seen or _QUESTION.search(text) or len(_WORD.findall(text)) < MIN_WORDS:
                continue
            # neighbouring chunks of a document overlap: one may start or end inside a sentence the other
            # holds whole, which is the one to keep
            edge = position in (0, len(sentences) - 1)
            if edge and any(text in other and text != other for other in documents[hit.document_id]):
                continue
            seen.add(text)
            found.append(Sentence(text, source, position, frozenset(analyze(text))))
    if len(found) <= limit:
        return found
    shared = term_scores(query_terms, found)
    ranked = sorted(range(len(found)), key=lambda i: (-shared[i], found[i].source, found[i].position))
    return [found[i] for i in sorted(ranked[:limit])]


def term_scores(query_terms: frozenset[str], sentences: Sequence[Sentence]) -> list[float]:
    """Per sentence, the idf-weighted share (0-1) of the question's terms it contains; the idf is taken
    over `sentences`, and terms no sentence contains are left out (they tell no sentence apart)."""
    n = len(sentences)
    weights = {t: idf(df, n) for t in query_terms if (df := sum(t in s.terms for s in sentences))}
    total = sum(weights.values())
    if not total:
        return [0.0] * n
    return [sum(w for t, w in weights.items() if t in s.terms) / total for s in sentences]


def select(
    sentences: Sequence[Sentence],
    similarities: Sequence[float],
    shared: Sequence[float],
    margin: float,
    max_sentences: int,
) -> list[Sentence]:
    """The sentences to quote: the best by `SEMANTIC_WEIGHT` x similarity + the rest x term score, and
    those within `margin` of it, at most `max_sentences` by score; sources in the order of their best
    sentence, each source's sentences in text order. None when none comes within `MIN_SIMILARITY`."""
    if not sentences:
        return []
    scores = [SEMANTIC_WEIGHT * sim + (1 - SEMANTIC_WEIGHT) * t for sim, t in zip(similarities, shared, strict=True)]
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], sentences[i].source, sentences[i].position))
    if max(similarities) < MIN_SIMILARITY:
        return []
    best = order[0]
    kept = [i for i in order if scores[i] >= scores[best] - margin][:max_sentences]
    rank: dict[int, int] = {}
    for i in kept:  # kept is best first: a source's first appearance is its best sentence
        rank.setdefault(sentences[i].source, len(rank))
    kept.sort(key=lambda i: (rank[sentences[i].source], sentences[i].position))
    return [sentences[i] for i in kept]
