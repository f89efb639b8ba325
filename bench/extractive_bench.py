"""Extractive answers: which sentences they quote, against labels, before and after selection by meaning.

    uv run python bench/extractive_bench.py          # --margins 0,0.1,0.15,0.2 to compare margins

Needs Debian's python3-doc (`apt-get install python3-doc`): the documents are pages of the Python
documentation as that package installs them (`/usr/share/doc/python3/html`), which nobody here wrote; the
labels in bench/extractive_questions.jsonl were made from python3.11-doc 3.11.2 (Debian 12). Only the labels
are in the repository: 45 questions, each with the sentences of the pages that answer it, and 4 that
nothing in the pages answers.

1. The pages (three FAQ pages, the programming FAQ as distraction, the tutorial's chapter on virtual
   environments) are parsed and chunked as ingestion does (`ragapi.ingestion`, the default 200-token chunks
   with 40 overlap), and the chunks embedded with the bundled model.
2. Each question retrieves its 5 sources (`DEFAULT_TOP_K`) in memory as the service ranks them: dense
   cosine and BM25 over the chunks (100 candidates each), convex fusion with the default dense weight.
3. Each answerer quotes from those sources: *before*, the selection this change replaced (the three
   sentences sharing most query terms, lines split at every newline), copied below; *after*, the service's
   `ExtractiveAnswerer` with the default settings (and each `--margins` value).
4. A quoted sentence is correct when it contains a labelled sentence, or is at least half of one (the old
   splitting quotes wrapped lines). Precision: correct quoted sentences / quoted sentences; recall:
   labelled sentences quoted / labelled sentences present in the sources (those the retrieval missed
   count for neither answerer). Both over all answerable questions (micro-averaged). Also: answers that
   quote exactly the labelled sentences present, answer length, questions refused, and the time `select`
   takes (embedding the question and candidates on one ONNX thread, `--threads`), wall and process CPU.
Writes bench/results/extractive.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragapi.core.settings import Settings
from ragapi.embedding import OnnxMiniLMEmbeddings
from ragapi.evaluation.metrics import percentile
from ragapi.generation.answerers import ExtractiveAnswerer
from ragapi.ingestion.chunking import chunk_document, make_splitter
from ragapi.ingestion.parsers import parse
from ragapi.retrieval.bm25 import BM25Params, analyze, document_weights, query_weights, term_counts
from ragapi.retrieval.chunks import Candidate, Hit
from ragapi.retrieval.fusion import convex_fusion

HERE = Path(__file__).parent
DOCS = Path("/usr/share/doc/python3/html")
PAGES = ["faq/general.html", "faq/design.html", "faq/library.html", "faq/programming.html", "tutorial/venv.html"]
CANDIDATES = 100


def load_pages() -> dict[str, bytes]:
    missing = [p for p in PAGES if not (DOCS / p).is_file()]
    if missing:
        sys.exit(
            f"missing {', '.join(str(DOCS / p) for p in missing)}: this benchmark reads the Python documentation "
            "as Debian's python3-doc installs it. Install it with: apt-get install python3-doc"
        )
    return {p: (DOCS / p).read_bytes() for p in PAGES}


def normal(text: str) -> str:
    return " ".join(text.split())


# --- before: the selection this change replaced (ragapi.generation.answerers at 313c692), verbatim ------

_OLD_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def old_split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _OLD_SENTENCE.split(text) if len(s.strip()) > 1]


def old_select(query: str, hits: Sequence[Hit], max_sentences: int = 3) -> list[tuple[str, int]]:
    terms = set(analyze(query))
    scored: list[tuple[float, int, str, int]] = []
    for source, hit in enumerate(hits, start=1):
        for position, sentence in enumerate(old_split_sentences(hit.text)):
            words = analyze(sentence)
            overlap = len(terms.intersection(words))
            if not overlap:
                continue
            score = overlap / math.sqrt(len(words) + 1) + 0.3 / source
            scored.append((score, -position, sentence, source))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    picked: list[tuple[str, int]] = []
    seen: set[str] = set()
    for _, _, sentence, source in scored:
        if sentence not in seen:
            seen.add(sentence)
            picked.append((sentence, source))
        if len(picked) == max_sentences:
            break
    if not picked and hits:
        first = old_split_sentences(hits[0].text)
        picked = [(first[0], 1)] if first else []
    return picked


# --- the corpus and its retrieval, in memory, as the service ranks ------------------------------------


class Corpus:
    def __init__(self, pages: dict[str, bytes], embeddings: OnnxMiniLMEmbeddings, settings: Settings) -> None:
        splitter = make_splitter(settings.chunk_size_tokens, settings.chunk_overlap_tokens)
        self.hits: list[Hit] = []
        for name, data in pages.items():
            parsed = parse(data, name, "text/html")
            document = uuid.uuid4()
            self.hits.extend(
                Hit(uuid.uuid4(), document, c.text, parsed.title, {"page": name}, 0.0)
                for c in chunk_document(parsed, splitter)
            )
        # what the ingestion pipeline embeds and counts: the title with each chunk
        self.vectors = embeddings.embed_array([f"{h.title}\n\n{h.text}" for h in self.hits])
        counts = [term_counts(f"{h.title}\n{h.text}") for h in self.hits]
        avgdl = sum(sum(c.values()) for c in counts) / len(counts)
        params = BM25Params(settings.bm25_k1, settings.bm25_b)
        self.sparse = [document_weights(c, avgdl, params) for c in counts]
        self.df: dict[int, int] = {}
        for c in counts:
            for t in c:
                self.df[t] = self.df.get(t, 0) + 1
        self.embeddings = embeddings
        self.dense_weight = settings.fusion_dense_weight

    def search(self, query: str, k: int) -> list[Hit]:
        q = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        cosine = self.vectors @ q
        dense = [Candidate(i, float(cosine[i])) for i in np.argsort(-cosine)[:CANDIDATES]]
        weights = query_weights(term_counts(query), self.df, len(self.hits))
        bm25 = [sum(w * d.get(t, 0.0) for t, w in weights.items()) for d in self.sparse]
        sparse = [Candidate(i, s) for i, s in sorted(enumerate(bm25), key=lambda x: -x[1])[:CANDIDATES] if s > 0]
        fused = convex_fusion(dense, sparse, self.dense_weight)[:k]
        return [self.hits[int(c.key)] for c in fused]


# --- scoring ------------------------------------------------------------------------------------------


def matches(quoted: str, label: str) -> bool:
    q, g = normal(quoted), normal(label)
    return g in q or (q in g and len(q) >= len(g) / 2)


def score(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    quoted = correct = labels = found = exact = length = refused = 0
    for row in rows:
        if not row["answer"]:
            continue
        answer = row[key]
        present = [g for g in row["answer"] if any(normal(g) in normal(h) for h in row["sources"])]
        quoted += len(answer)
        correct += sum(any(matches(s, g) for g in row["answer"]) for s in answer)
        labels += len(present)
        hit = [g for g in present if any(matches(s, g) for s in answer)]
        found += len(hit)
        exact += bool(present) and len(hit) == len(present) and all(any(matches(s, g) for g in present) for s in answer)
        length += sum(len(s) for s in answer)
        refused += not answer
    answerable = sum(bool(r["answer"]) for r in rows)
    unanswerable = [r for r in rows if not r["answer"]]
    return {
        "precision": round(correct / max(quoted, 1), 3),
        "recall": round(found / max(labels, 1), 3),
        "exact": exact,
        "sentences_per_answer": round(quoted / answerable, 2),
        "characters_per_answer": round(length / answerable),
        "answerable_refused": refused,
        "unanswerable_refused": sum(not r[key] for r in unanswerable),
        "unanswerable": len(unanswerable),
        "labels_retrieved": labels,
    }


async def run(margins: list[float], threads: int) -> dict[str, Any]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    questions = [json.loads(line) for line in (HERE / "extractive_questions.jsonl").read_text().splitlines() if line]
    pages = load_pages()
    text = {p: normal(" ".join(s.text for s in parse(d, p, "text/html").sections)) for p, d in pages.items()}
    absent = [g for q in questions for g in q["answer"] if not any(normal(g) in t for t in text.values())]
    if absent:
        sys.exit(f"{len(absent)} labelled sentences are not in the installed pages (another version?): {absent[:3]}")
    embeddings = OnnxMiniLMEmbeddings(threads, int8_matmul=settings.embedding_int8_matmul)
    started = time.perf_counter()
    corpus = Corpus(pages, embeddings, settings)
    print(f"{len(corpus.hits)} chunks from {len(pages)} pages in {time.perf_counter() - started:.1f} s", flush=True)
    answerers = {
        f"after, margin {m}": ExtractiveAnswerer(
            embeddings, settings.extractive_sentences, m, settings.extractive_candidates
        )
        for m in sorted({settings.extractive_margin, *margins})
    }
    rows: list[dict[str, Any]] = []
    timings: dict[str, list[float]] = {name: [] for name in answerers}
    cpu: dict[str, list[float]] = {name: [] for name in answerers}
    for q in questions:
        hits = corpus.search(q["question"], settings.default_top_k)
        row = {**q, "sources": [normal(h.text) for h in hits]}
        row["before"] = [s for s, _ in old_select(q["question"], hits, settings.extractive_sentences)]
        for name, answerer in answerers.items():
            t0, c0 = time.perf_counter(), time.process_time()  # the process's CPU: the executor's threads too
            row[name] = [s.text for s in await answerer.select(q["question"], hits)]
            timings[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
        rows.append(row)
    results = {"before": score(rows, "before")}
    for name in answerers:
        results[name] = {
            **score(rows, name),
            "select_ms_p50": round(percentile(timings[name], 50), 1),
            "select_ms_p95": round(percentile(timings[name], 95), 1),
            "select_cpu_ms_p50": round(percentile(cpu[name], 50), 1),
            "select_cpu_ms_p95": round(percentile(cpu[name], 95), 1),
        }
    return {"settings": {"margin": settings.extractive_margin}, "results": results, "answers": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--margins", default="", help="further margins to compare, e.g. 0.05,0.15")
    parser.add_argument("--threads", type=int, default=1, help="ONNX intra-op threads (1, as in each API worker)")
    args = parser.parse_args()
    margins = [float(m) for m in args.margins.split(",") if m]
    report = asyncio.run(run(margins, args.threads))
    out = HERE / "results" / "extractive.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    header = f"{'answerer':<20} {'precision':>9} {'recall':>6} {'exact':>5} {'sentences':>9} {'chars':>5}"
    print(header + "  refused (answerable / unanswerable)  select p50/p95 ms: wall, CPU")
    for name, r in report["results"].items():
        timing = (
            f"  {r['select_ms_p50']}/{r['select_ms_p95']}, {r['select_cpu_ms_p50']}/{r['select_cpu_ms_p95']}"
            if "select_ms_p50" in r
            else ""
        )
        print(
            f"{name:<20} {r['precision']:>9} {r['recall']:>6} {r['exact']:>5} {r['sentences_per_answer']:>9} "
            f"{r['characters_per_answer']:>5}  {r['answerable_refused']} / {r['unanswerable_refused']} of "
            f"{r['unanswerable']}{timing}"
        )
    print(f"details: {out}")


if __name__ == "__main__":
    main()
