"""Multi-turn retrieval: do follow-up questions find their page once the conversation is taken into account?

    uv run python bench/multiturn_bench.py [--docs DIR] [--set tuning|held-out|held-out-2] [--rewrite MODULE:FUNCTION]
                                           [--check]

The corpus is the Python 3.11 Library Reference as Debian's `python3-doc` installs it: every module page
that chapters 6–19 of the library index link to (Text Processing Services through Internet Data
Handling), one document per page, its id the path under the HTML root (`library/shutil.html`). The
pages are read from the installed package, never copied into the repository.

Three sets of conversations, written for this benchmark, of 2 or 3 turns each: `tuning`
(`bench/multiturn/conversations.jsonl`) and `held-out` (`bench/multiturn/heldout.jsonl`), the sets the
rewrite was developed on, and `held-out-2` (`bench/multiturn/heldout2.jsonl`), written before the
rewrite's last change, only ever reported, never tuned on. Every later turn names the pages that answer it,
with a quote from each page that `--check` finds in the text the pipeline indexes. Later turns are
elliptical ("and how do I remove one?"), except those marked `shift`: a self-contained question on a new
subject, as real chats have (held-out sets only); hit@5 is reported for all later turns and, where there
are shifts, for each kind.

The pages are ingested once through the real pipeline (HTML parser, chunking, bundled embeddings) into a
throwaway embedded PostgreSQL. Each conversation is then replayed turn by turn, as the service would see
it, with the service's `HybridSearch` (chunk hits folded into pages, best chunk wins): the opening
question is searched as asked, every later turn with the query of the strategy, which is given the
earlier turns (`ragapi.generation.condense.Turn`) with the titles their answers would cite: those of the
top CITED chunk hits of each earlier turn's own query, never the labels. The strategies:

- `last turn`: the follow-up alone, as a retriever without history sees it;
- `concatenated`: every user turn so far joined with spaces;
- `rewrite`: the service's offline rewrite, `ragapi.answering.rewrite.standalone_question`, or any
  `MODULE:FUNCTION(history, question) -> str` (or an awaitable of it) given with `--rewrite`;
- `rewrite + cited title`: an experiment the service does not use: the rewrite, then the title most of
  the previous answer's citations share.

The LLM condensing path (`ragapi.generation.condense.ChatCondenser`, as `build_condenser` makes it with
a key set: CONDENSE_TIMEOUT_S, CONDENSE_MAX_TOKENS, the offline rewrite as its fallback) runs against the
latency model, `bench/llm_server.py` (LLM_TTFT_S to the first token, LLM_TOKENS_PER_S, LLM_TOKENS a
reply). Its replies are canned text, so what they would retrieve means nothing: it reports the wire
instead, the requests the model received, the latency each later turn waited for its standalone
question (p50, p95), fallbacks by reason, and tokens.

Reports hit@5 (the share of later turns with an answering page in the top 5) and MRR@5 per strategy and
set, writes bench/results/multiturn.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bs4 import BeautifulSoup
from prometheus_client import REGISTRY
from run_load import free_port, wait_until

from ragapi.answering.condense import build_condenser
from ragapi.answering.rewrite import standalone_question
from ragapi.api.state import AppState
from ragapi.core.metrics import CONDENSE_FALLBACK_REASONS
from ragapi.core.settings import Settings
from ragapi.generation.condense import Condenser, Turn
from ragapi.ingestion.parsers import parse_html
from ragapi.ingestion.pipeline import IngestItem, IngestPipeline
from ragapi.retrieval.hybrid import HybridSearch
from ragapi.tenants.service import create_tenant

HERE = Path(__file__).resolve().parent
CONVERSATIONS = HERE / "multiturn" / "conversations.jsonl"
HELDOUT = HERE / "multiturn" / "heldout.jsonl"
HELDOUT2 = HERE / "multiturn" / "heldout2.jsonl"
SETS = {"tuning": CONVERSATIONS, "held-out": HELDOUT, "held-out-2": HELDOUT2}
RESULTS = HERE / "results" / "multiturn.json"

PACKAGE = "python3-doc"
DOC_ROOTS = (Path("/usr/share/doc/python3/html"), Path("/usr/share/doc/python3-doc/html"))
# Chapters 6–19 of the 3.11 library index, by title (the numbers are not in the HTML).
CHAPTERS = (
    "Text Processing Services",
    "Binary Data Services",
    "Data Types",
    "Numeric and Mathematical Modules",
    "Functional Programming Modules",
    "File and Directory Access",
    "Data Persistence",
    "Data Compression and Archiving",
    "File Formats",
    "Cryptographic Services",
    "Generic Operating System Services",
    "Concurrent Execution",
    "Networking and Interprocess Communication",
    "Internet Data Handling",
)
PAGE_ID = "page_id"  # document metadata: the page's path under the HTML root
K = 5
SEARCH_K = 50  # chunk hits read per query, folded into pages

# The latency model the LLM condensing runs against: its load-test defaults, replies a question long.
LLM_TTFT_S = 0.8
LLM_TOKENS_PER_S = 50.0
LLM_TOKENS = 20
CONDENSE_CONCURRENCY = 8  # conversations condensed at once: the model's waits are sleeps, not CPU
CITED = 5  # the sources an answer is given (DEFAULT_TOP_K chunk hits): their titles are the turn's citations

Rewrite = Callable[[list[Turn], str], "str | Awaitable[str]"]  # (earlier turns, follow-up) -> query


class MissingDocs(SystemExit):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"{detail}\nThe corpus is the Python documentation from Debian's {PACKAGE} package: install it with\n"
            f"    apt-get install -y {PACKAGE}    (as root, or with sudo)\n"
            "or pass --docs with the folder that holds its library/index.html."
        )


@dataclass(frozen=True, slots=True)
class Page:
    page_id: str  # library/shutil.html
    chapter: str
    title: str
    html: bytes  # what is ingested: the page's main text, without Sphinx's navigation


# ---------------------------------------------------------------------------------------------- corpus


def find_docs(given: Path | None) -> Path:
    for root in (given,) if given else DOC_ROOTS:
        if root is not None and (root / "library" / "index.html").is_file():
            return root.resolve()
    where = given or " or ".join(str(r) for r in DOC_ROOTS)
    raise MissingDocs(f"The Python documentation is not installed: no library/index.html under {where}.")


def chapter_pages(root: Path) -> list[tuple[str, str]]:
    """(chapter, page id) for every page the chosen chapters of the library index link to, in index order."""
    soup = BeautifulSoup((root / "library" / "index.html").read_text(encoding="utf-8"), "html.parser")
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    chapters_seen: set[str] = set()
    for chapter in soup.select("li.toctree-l1"):
        link = chapter.find("a", recursive=False)
        title = link.get_text(" ", strip=True) if link else ""
        if title not in CHAPTERS:
            continue
        chapters_seen.add(title)
        for entry in chapter.select("li.toctree-l2 > a"):
            page_id = "library/" + str(entry["href"]).split("#", 1)[0]
            if page_id not in seen:
                seen.add(page_id)
                found.append((title, page_id))
    missing = [c for c in CHAPTERS if c not in chapters_seen]
    if missing:
        raise MissingDocs(f"{root}/library/index.html has no chapter {missing[0]!r}: not the 3.11 documentation?")
    return found


def main_text_html(raw: str) -> tuple[str, str]:
    """The page's title and its main body as a small HTML document, without Sphinx's navigation,
    sidebar, footer and permalink marks. Definition terms (`<dt>`: the signatures of functions, classes
    and methods) become paragraphs, because the service's HTML parser reads only block elements
    (`p`, `li`, `pre`, `td`, `blockquote`, headings) and would drop every signature."""
    soup = BeautifulSoup(raw, "html.parser")
    body = soup.select_one('div.body[role="main"]')
    if body is None:
        raise ValueError("no main body")
    for mark in body.select("a.headerlink"):
        mark.decompose()
    for term in body.find_all("dt"):
        term.name = "p"
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    title = re.sub(r"\s+—\s+Python [\d.]+ documentation$", "", title)
    return title, f"<html><head><title>{escape(title)}</title></head><body>{body}</body></html>"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docs_version(root: Path) -> str:
    """The documentation's release as its index page names it ("3.11.2")."""
    match = re.search(r"Python ([\d.]+\w*) documentation", (root / "index.html").read_text(encoding="utf-8"))
    return match.group(1) if match else "unknown"


def load_corpus(root: Path) -> list[Page]:
    pages = []
    for chapter, page_id in chapter_pages(root):
        path = root / page_id
        if not path.is_file():
            raise MissingDocs(f"{path} is missing: the {PACKAGE} installation is incomplete.")
        title, html = main_text_html(path.read_text(encoding="utf-8"))
        pages.append(Page(page_id=page_id, chapter=chapter, title=title, html=html.encode()))
    return pages


def indexed_text(page: Page) -> str:
    """The text the pipeline indexes for the page (its HTML parser's sections), normalised for quoting."""
    parsed = parse_html(page.html, page.page_id)
    return normalise(" ".join(s.text for s in parsed.sections))


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip().lower()


# ------------------------------------------------------------------------------------------ conversations


def load_conversations(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def later_turns(conversations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns that are scored: all but each conversation's first."""
    return [turn for conv in conversations for turn in conv["turns"][1:]]


def check(conversations: Sequence[dict[str, Any]], pages: Sequence[Page]) -> list[str]:
    """Problems with the data: unknown ids, malformed turns, labels whose quote is not in the page."""
    by_id = {p.page_id: p for p in pages}
    texts: dict[str, str] = {}
    problems = []
    ids = [c.get("id") for c in conversations]
    if len(set(ids)) != len(ids):
        problems.append("conversation ids repeat")
    for conv in conversations:
        turns = conv.get("turns", [])
        if not 2 <= len(turns) <= 3:
            problems.append(f"{conv['id']}: {len(turns)} turns (2 or 3 expected)")
        for n, turn in enumerate(turns):
            where = f"{conv['id']} turn {n + 1}"
            if not turn.get("text", "").strip():
                problems.append(f"{where}: no text")
            if "shift" in turn and (n == 0 or not isinstance(turn["shift"], bool)):
                problems.append(f"{where}: `shift` is a true or false on a later turn")
            if n == 0 and "pages" not in turn:
                continue
            if not turn.get("pages"):
                problems.append(f"{where}: no answering page")
            evidence = turn.get("evidence", {})
            for page_id in turn.get("pages", []):
                if page_id not in by_id:
                    problems.append(f"{where}: {page_id} is not in the corpus")
                    continue
                quote = evidence.get(page_id)
                if not quote:
                    problems.append(f"{where}: no quote from {page_id}")
                    continue
                if page_id not in texts:
                    texts[page_id] = indexed_text(by_id[page_id])
                if normalise(quote) not in texts[page_id]:
                    problems.append(f"{where}: quote not found in {page_id}: {quote!r}")
    return problems


# ------------------------------------------------------------------------------------------ strategies


def last_turn(_history: list[Turn], question: str) -> str:
    return question


def concatenated(history: list[Turn], question: str) -> str:
    return " ".join([*(turn.question for turn in history), question])


def offline_rewrite(history: list[Turn], question: str) -> str:
    """The service's offline rewrite: it reads the earlier questions only."""
    return standalone_question([turn.question for turn in history], question)


def with_cited_title(history: list[Turn], question: str) -> str:
    """An experiment, not the service: the offline rewrite, then the title that most of the previous
    answer's citations share (at least 3 of its 5), when there is one."""
    query = offline_rewrite(history, question)
    if not history or not history[-1].sources:
        return query
    title, count = Counter(history[-1].sources).most_common(1)[0]
    return f"{query} {title}" if count >= 3 else query


def named_rewrite(spec: str) -> tuple[str, Rewrite]:
    module_name, _, name = spec.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    if not callable(function):
        raise SystemExit(f"{spec} is not callable")
    return spec, function


async def apply(strategy: Rewrite, history: list[Turn], question: str) -> str:
    query = strategy(list(history), question)
    if inspect.isawaitable(query):
        query = await query
    return str(query)


# ----------------------------------------------------------------------------------- LLM condensing


@contextmanager
def latency_model() -> Iterator[str]:
    """bench/llm_server.py in a process of its own; yields its base URL."""
    port = free_port()
    model = subprocess.Popen(  # noqa: S603 - our own latency model
        [sys.executable, "-m", "bench.llm_server", "--port", str(port), "--ttft", str(LLM_TTFT_S)]
        + ["--tps", str(LLM_TOKENS_PER_S), "--tokens", str(LLM_TOKENS)],
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(f"http://127.0.0.1:{port}/v1/chat/completions")  # 405 once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        model.terminate()
        model.wait()


def fallbacks_so_far() -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("rag_condense_fallbacks_total", {"reason": reason}) or 0.0
        for reason in CONDENSE_FALLBACK_REASONS
    }


async def condense_on_the_wire(
    condenser: Condenser, base: str, conversations: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Every later turn through `condenser`, conversations CONDENSE_CONCURRENCY at a time, each turn given
    the earlier questions (the benchmark has no answers). What is measured is the wire: requests the model
    received, the latency added to each turn, fallbacks, tokens; the model's replies are canned text, so
    what they would retrieve means nothing."""
    async with httpx.AsyncClient() as client:
        requested = (await client.get(base + "/stats")).json()["chat_completions"]
        fallen = fallbacks_so_far()
        latencies: list[float] = []
        methods: Counter[str] = Counter()
        prompt_tokens = completion_tokens = 0
        limit = asyncio.Semaphore(CONDENSE_CONCURRENCY)

        async def replay(conv: dict[str, Any]) -> None:
            nonlocal prompt_tokens, completion_tokens
            history: list[Turn] = []
            async with limit:
                for turn in conv["turns"]:
                    if history:
                        started = time.perf_counter()
                        condensed = await condenser.condense(list(history), turn["text"])
                        latencies.append((time.perf_counter() - started) * 1000)
                        methods[condensed.method] += 1
                        prompt_tokens += condensed.usage.prompt_tokens
                        completion_tokens += condensed.usage.completion_tokens
                    history.append(Turn(turn["text"]))

        started = time.perf_counter()
        await asyncio.gather(*(replay(conv) for conv in conversations))
        seconds = time.perf_counter() - started
        requests = (await client.get(base + "/stats")).json()["chat_completions"] - requested
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    n = len(latencies) or 1
    return {
        "turns": len(latencies),
        "requests": requests,
        "latency_ms_p50": round(percentiles[49]),
        "latency_ms_p95": round(percentiles[94]),
        "fallbacks": {reason: int(count - fallen[reason]) for reason, count in fallbacks_so_far().items()},
        "methods": dict(methods),
        "prompt_tokens_mean": round(prompt_tokens / n, 1),
        "completion_tokens_mean": round(completion_tokens / n, 1),
        "seconds": round(seconds, 1),
    }


# --------------------------------------------------------------------------------------------- running


async def ingest(pipeline: IngestPipeline, tenant_id: Any, pages: Sequence[Page], batch: int = 8) -> int:
    chunks = 0
    for start in range(0, len(pages), batch):
        items = [
            IngestItem(
                data=page.html,
                filename=page.page_id,
                content_type="text/html",
                title=page.title,
                metadata={PAGE_ID: page.page_id},
                external_id=page.page_id,
            )
            for page in pages[start : start + batch]
        ]
        report = await pipeline.run(tenant_id, items)
        failed = [r for r in report.results if r.status == "failed"]
        if failed:
            raise SystemExit(f"{failed[0].filename} failed to ingest: {failed[0].error}")
        chunks += sum(r.chunks for r in report.results)
    return chunks


@dataclass(frozen=True, slots=True)
class Ranked:
    pages: list[str]  # the top K pages, best first
    titles: tuple[str, ...]  # the titles of the CITED best chunks, best first: what the answer would cite


async def ranked_pages(search: HybridSearch, tenant_id: Any, query: str) -> Ranked:
    hits = (await search.search(tenant_id, query, SEARCH_K, {})).hits
    ranked: list[str] = []
    for hit in hits:
        page = str(hit.metadata.get(PAGE_ID))
        if page not in ranked:
            ranked.append(page)
    return Ranked(ranked[:K], tuple(hit.title for hit in hits[:CITED]))


async def run_strategy(
    search: HybridSearch, tenant_id: Any, conversations: Sequence[dict[str, Any]], strategy: Rewrite
) -> tuple[dict[str, Any], list[int | None]]:
    """Replays each conversation turn by turn as the service would: every later turn is searched with the
    strategy's query, given the earlier turns with the titles their answers cited, which are the titles of
    the best hits of those turns' own queries (the opening question's as asked). Returns the later turns'
    scores and the ranks of the labelled opening questions."""
    rewrite_ms, per_turn, openers = [], [], []
    for conv in conversations:
        history: list[Turn] = []
        for n, turn in enumerate(conv["turns"]):
            question = turn["text"]
            query = question
            if n > 0:
                started = time.perf_counter()
                query = await apply(strategy, list(history), question)
                rewrite_ms.append((time.perf_counter() - started) * 1000)
            ranked = await ranked_pages(search, tenant_id, query)
            rank = next((r for r, page in enumerate(ranked.pages, start=1) if page in turn.get("pages", ())), None)
            if n == 0:
                if turn.get("pages"):
                    openers.append(rank)
            else:
                shift = bool(turn.get("shift", False))
                per_turn.append(
                    {"conversation": conv["id"], "shift": shift, "query": query, "rank": rank, "top": ranked.pages}
                )
            history.append(Turn(question=question, sources=ranked.titles))
    row = scores([t["rank"] for t in per_turn])
    if any(t["shift"] for t in per_turn):
        row["elliptical"] = scores([t["rank"] for t in per_turn if not t["shift"]])
        row["shift"] = scores([t["rank"] for t in per_turn if t["shift"]])
    row |= {"rewrite_ms_mean": round(sum(rewrite_ms) / (len(rewrite_ms) or 1), 3), "turns": per_turn}
    return row, openers


def scores(ranks: Sequence[int | None]) -> dict[str, Any]:
    """hit@5 and MRR@5 of the turns whose answering pages ranked so (None: not in the top 5)."""
    n = len(ranks) or 1
    hits = sum(rank is not None for rank in ranks)
    return {
        "hit@5": round(hits / n, 4),
        "mrr@5": round(sum(1 / rank for rank in ranks if rank) / n, 4),
        "hits": hits,
        "n": len(ranks),
    }


async def run(root: Path, rewrite: tuple[str, Rewrite], sets: Sequence[str]) -> dict[str, Any]:
    started_all = time.perf_counter()
    pages = load_corpus(root)
    conversations = {name: load_conversations(SETS[name]) for name in sets}
    for name, convs in conversations.items():
        problems = check(convs, pages)
        if problems:
            raise SystemExit(f"the {name} conversations do not match the pages:\n  " + "\n  ".join(problems))
    strategies: list[tuple[str, str, Rewrite]] = [
        ("last turn alone", "the follow-up as asked", last_turn),
        ("turns concatenated", "every user turn so far, joined", concatenated),
        ("rewrite", rewrite[0], rewrite[1]),
        ("rewrite + cited title", "experiment: the previous answer's main title appended", with_cited_title),
    ]
    with tempfile.TemporaryDirectory(prefix="ragapi-multiturn-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        state = await AppState.start(settings)
        try:
            tenant = await create_tenant(state.db, "multiturn")
            started = time.perf_counter()
            chunks = await ingest(state.pipeline, tenant.tenant_id, pages)
            ingest_s = time.perf_counter() - started
            search = HybridSearch(state.db, state.embeddings, settings, state.indexes)
            reports = []
            for name, convs in conversations.items():
                scored_turns = later_turns(convs)
                rows = []
                openers: list[int | None] = []
                for strategy_name, source, strategy in strategies:
                    started = time.perf_counter()
                    scored, openers = await run_strategy(search, tenant.tenant_id, convs, strategy)
                    seconds = round(time.perf_counter() - started, 1)
                    rows.append({"strategy": strategy_name, "source": source} | scored | {"seconds": seconds})
                reference = {"strategy": "first turns (self-contained)", "source": "the opening question as asked"}
                reference |= scores(openers)
                reports.append(
                    {
                        "set": name,
                        "file": str(SETS[name].relative_to(HERE.parent)),
                        "conversations": len(convs),
                        "later_turns": len(scored_turns),
                        "shift_turns": sum(bool(turn.get("shift")) for turn in scored_turns),
                        "first_turns": len(openers),
                        "results": rows,
                        "reference": reference,
                    }
                )
        finally:
            await state.stop()
        with latency_model() as base:
            llm = Settings(  # type: ignore[call-arg]
                _env_file=None, data_dir=Path(tmp), openai_api_key="sk-bench", openai_base_url=base + "/v1"
            )
            condenser = build_condenser(llm)
            for part in reports:
                part["llm_condensing"] = {
                    "strategy": "rewrite, LLM condensing",
                    "source": f"{type(condenser).__name__} against bench/llm_server.py (canned replies)",
                    "model": {"ttft_s": LLM_TTFT_S, "tokens_per_s": LLM_TOKENS_PER_S, "tokens": LLM_TOKENS},
                    "timeout_s": llm.condense_timeout_s,
                    "max_tokens": llm.condense_max_tokens,
                    "concurrency": CONDENSE_CONCURRENCY,
                } | await condense_on_the_wire(condenser, base, conversations[part["set"]])
    return {
        "corpus": {
            "source": f"Debian {PACKAGE}: {root}",
            "python_docs_version": docs_version(root),
            "chapters": list(CHAPTERS),
            "pages": len(pages),
            "chunks": chunks,
            "chunk_size_tokens": settings.chunk_size_tokens,
            "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        },
        "k": K,
        "fusion": settings.fusion.value,
        "fusion_dense_weight": settings.fusion_dense_weight,
        "ingest_seconds": round(ingest_s, 1),
        "total_seconds": round(time.perf_counter() - started_all, 1),
        "sets": reports,
    }


def table(report: dict[str, Any]) -> str:
    corpus = report["corpus"]
    lines = [f"{corpus['pages']} pages ({corpus['chunks']} chunks)"]
    for part in report["sets"]:
        shifts = part["shift_turns"]
        lines += [
            "",
            f"{part['set']} ({part['file']}): {part['conversations']} conversations, {part['later_turns']} later turns"
            + (f", {shifts} of them a change of subject" if shifts else ""),
            "",
            "| strategy | hit@5 | MRR@5 |" + (" hit@5 elliptical | hit@5 new subject |" if shifts else ""),
            "|---|---|---|" + ("---|---|" if shifts else ""),
        ]
        kinds = ("elliptical", "shift") if shifts else ()
        for row in part["results"]:
            line = f"| {row['strategy']} | {row['hit@5']:.3f} ({row['hits']}) | {row['mrr@5']:.3f} |"
            line += "".join(f" {row[kind]['hit@5']:.3f} ({row[kind]['hits']}) |" for kind in kinds)
            lines.append(line)
        ref = part["reference"]
        lines.append(
            f"\nFor reference, the {part['first_turns']} opening questions (self-contained): "
            f"hit@5 {ref['hit@5']:.3f} ({ref['hits']}), MRR@5 {ref['mrr@5']:.3f}"
        )
        llm = part.get("llm_condensing")
        if llm:
            fallen = ", ".join(f"{reason} {n}" for reason, n in llm["fallbacks"].items() if n) or "none"
            lines.append(
                f"\nLLM condensing ({llm['source']}; hit@5 not meaningful): {llm['turns']} turns, "
                f"{llm['requests']} requests, latency added per turn p50 {llm['latency_ms_p50']} ms, "
                f"p95 {llm['latency_ms_p95']} ms, fallbacks: {fallen}, methods {llm['methods']}, "
                f"tokens a turn {llm['prompt_tokens_mean']} prompt + {llm['completion_tokens_mean']} completion"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=Path, help="the HTML root of the Python documentation")
    parser.add_argument("--set", choices=list(SETS), action="append", help="a set of conversations (default: all)")
    parser.add_argument(
        "--rewrite", help="MODULE:FUNCTION(history: list[Turn], question) for the rewrite (default: the service's)"
    )
    parser.add_argument("--check", action="store_true", help="only check the conversations against the pages")
    args = parser.parse_args()
    root = find_docs(args.docs)
    sets = args.set or list(SETS)
    if args.check:
        pages = load_corpus(root)
        failed = False
        for name in sets:
            conversations = load_conversations(SETS[name])
            problems = check(conversations, pages)
            for problem in problems:
                print(f"{name}: {problem}", file=sys.stderr)
            print(
                f"{name}: {len(pages)} pages, {len(conversations)} conversations, "
                f"{len(later_turns(conversations))} later turns: {len(problems)} problems"
            )
            failed = failed or bool(problems)
        raise SystemExit(1 if failed else 0)
    rewrite = named_rewrite(args.rewrite) if args.rewrite else ("ragapi.answering.rewrite", offline_rewrite)
    report = asyncio.run(run(root, rewrite, sets))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()
