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

from api.evaluate import ingest_corpus, load_beir
from api.state import AppState
from bench.run_scifact import DEFAULT_DIR, machine
from chains.answer_cache import exact_key, partition_key
from chains.fusion import convex_fusion
from chains.index import get_knowledge_base
from chains.metrics import percentile
from chains.retriever import HybridRetriever
from chains.sparse import term_counts
from chains.vector_index import index_for
from core.settings import Settings
from tenants.service import create_tenant


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
                kb = await get_knowledge_base(session, tid)
            assert kb is not None
            index = index_for(state.indexes, kb)
            cycle = iter(range(10**9))

            def next_query() -> str:
                return queries[next(cycle) % len(queries)]

            vectors = [await asyncio.to_thread(state.embeddings.embed_query, q) for q in queries[:200]]
            dense = await index.dense_candidates(tid, kb, vectors[0], settings.retrieval_candidates, {})
            sparse = await index.sparse_candidates(tid, kb, term_counts(queries[0]), settings.retrieval_candidates, {})
            top5 = convex_fusion(dense, sparse, 0.4)[:5]
            retriever = HybridRetriever(
                db=state.db, embeddings=state.embeddings, settings=settings, tenant_id=tid, k=5, indexes=state.indexes
            )
            # warm the caches with answers to the first 50 questions
            chain = state.answer_chain()
            config = {"configurable": {"tenant_id": str(tid)}}
            for q in queries[:50]:
                await chain.ainvoke({"query": q}, config=config)
            await state.cached.drain()
            params = state.cached.parameters(settings.default_top_k, {})
            scope = await state.cached.tenant_scope(tid)
            threshold = scope.threshold(settings.semantic_cache_threshold)
            partition = partition_key(tid, scope.kb_version, params)
            assert state.cached.semantic is not None
            semantic = state.cached.semantic

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
                "hybrid retrieval (all of the above)": lambda: retriever.search(next_query()),
                "exact cache lookup (hit)": lambda: state.cached.exact.get(
                    exact_key(partition, queries[next(cycle) % 50])
                ),
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
