"""Stage benchmarks: each step of a query alone, at 1 and at 100 concurrent requests, plus memory.

    uv run python bench/stage_bench.py [--docs 1000] [--rounds 3]

Ingests `--docs` SciFact abstracts into a throwaway embedded PostgreSQL, then times query embedding,
dense search, sparse (BM25) search, fusion, reading the top 5 chunks, the whole hybrid retrieval, and
answer-cache lookups (exact in-process, semantic in pgvector), each with p50/p95 over `--rounds` x 100
samples. At
concurrency 100 every request's own latency is measured while all 100 are in flight. Rerank is
reported only when a reranker is configured (none is, offline). Writes bench/results/stages.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# a sibling module: run as a script (`python bench/...py`), whose folder is on the import path
from run_scifact import DEFAULT_DIR, machine

from ragapi.answering.question import AnswerRequest, Question, Surface
from ragapi.api.state import AppState
from ragapi.core.settings import Settings
from ragapi.evaluation.beir import ingest_corpus, load_beir
from ragapi.evaluation.metrics import percentile
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import term_counts
from ragapi.retrieval.fusion import convex_fusion
from ragapi.retrieval.vectors.base import index_for
from ragapi.tenants.service import create_tenant, operator_context


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def measure(fn: Callable[[], Awaitable[Any]], concurrency: int, rounds: int) -> dict[str, float]:
    samples: list[float] = []
    for _ in range(rounds):
        if concurrency == 1:
            samples += [await timed(fn) for _ in range(100)]
        else:
            samples += await asyncio.gather(*(timed(fn) for _ in range(concurrency)))
    return {"p50": round(percentile(samples, 50), 2), "p95": round(percentile(samples, 95), 2)}


async def main(folder: Path, docs: int, rounds: int) -> dict[str, Any]:
    data = load_beir(folder, "train")
    queries = list(data.queries.values())
    with tempfile.TemporaryDirectory(prefix="ragapi-stages-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        state = await AppState.start(settings)
        try:
            tenant = await create_tenant(state.db, "stages")
            tid = tenant.tenant_id
            await ingest_corpus(state.pipeline, tid, data.corpus[:docs])
            async with state.db.tenant_session(tid) as session:
                kb = await knowledge_bases.get(session, tid)
            assert kb is not None
            index = index_for(state.indexes, kb)
            cycle = iter(range(10**9))

            def next_query() -> str:
                return queries[next(cycle) % len(queries)]

            vectors = [await asyncio.to_thread(state.embeddings.embed_query, q) for q in queries[:200]]
            dense = await index.dense_candidates(tid, kb, vectors[0], settings.retrieval_candidates, {})
            sparse = await index.sparse_candidates(tid, kb, term_counts(queries[0]), settings.retrieval_candidates, {})
            top5 = convex_fusion(dense, sparse, 0.4)[:5]
            search = state.answers.pipeline.search
            # warm the caches with answers to the first 50 questions
            answers, cache = state.answers, state.answers.cache
            operator = await operator_context(state.db, settings, tid)
            for q in queries[:50]:
                await answers.ask(AnswerRequest(operator, Surface.CLI, Question.parse(q, None, None, True, settings)))
            await cache.drain()
            admitted = await answers.admit(
                AnswerRequest(operator, Surface.CLI, Question.parse("?", None, None, True, settings))
            )
            threshold = admitted.scope.threshold(settings.semantic_cache_threshold)
            partition, _ = cache.keys(tid, admitted.scope.key, Question.parse("?", None, None, True, settings))
            semantic = cache.semantic
            assert semantic is not None

            def exact_key_of(query: str) -> str:
                return cache.keys(tid, admitted.scope.key, Question.parse(query, None, None, True, settings))[1]

            hit_keys = [exact_key_of(q) for q in queries[:50]]

            stages: dict[str, Callable[[], Awaitable[Any]]] = {
                "query embedding": lambda: asyncio.to_thread(state.embeddings.embed_query, next_query()),
                "dense search (HNSW)": lambda: index.dense_candidates(
                    tid, kb, vectors[next(cycle) % 200], settings.retrieval_candidates, {}
                ),
                "sparse search (BM25)": lambda: index.sparse_candidates(
                    tid, kb, term_counts(next_query()), settings.retrieval_candidates, {}
                ),
                "fusion (convex)": lambda: asyncio.sleep(0, convex_fusion(dense, sparse, 0.4)),
                "read the top 5 chunks": lambda: index.hits(tid, top5, {}),
                "hybrid retrieval (all of the above)": lambda: search.search(tid, next_query(), 5, {}),
                "exact cache lookup (hit)": lambda: cache.exact.get(hit_keys[next(cycle) % 50]),
                "semantic cache lookup": lambda: semantic.lookup(
                    tid, partition, queries[0], vectors[next(cycle) % 50], threshold
                ),
            }
            rows = []
            for name, fn in stages.items():
                rows.append({"stage": name, "c1": await measure(fn, 1, rounds), "c100": await measure(fn, 100, rounds)})
            rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        finally:
            await state.stop()
    return {"documents": docs, "rounds": rounds, "machine": machine(), "peak_rss_mib": rss_mib, "stages": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = asyncio.run(main(args.folder, args.docs, args.rounds))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "stages.json").write_text(json.dumps(report, indent=2))
    print("| stage | p50 ms (1) | p95 ms (1) | p50 ms (100 concurrent) | p95 ms (100 concurrent) |")  # noqa: T201
    print("|---|---|---|---|---|")  # noqa: T201
    for row in report["stages"]:
        c1, c100 = row["c1"], row["c100"]
        print(f"| {row['stage']} | {c1['p50']} | {c1['p95']} | {c100['p50']} | {c100['p95']} |")  # noqa: T201
    print(f"peak RSS: {report['peak_rss_mib']} MiB")  # noqa: T201
