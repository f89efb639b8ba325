"""Retrieval benchmark on SciFact (BEIR) with the offline default: quality, ingestion rate, latency.

    uv run python bench/run_scifact.py [BEIR_DIR] [--split train]

Ingests the corpus once into a throwaway embedded PostgreSQL through the real pipeline, then runs
every query through the real hybrid retriever for each fusion setting, so the rows are comparable
(one run, one machine). Prints JSON and writes it to bench/results/scifact.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from ragapi.api.state import AppState
from ragapi.core.settings import Fusion, Settings
from ragapi.evaluation.beir import ingest_corpus, load_beir, run_queries
from ragapi.retrieval.hybrid import HybridSearch
from ragapi.retrieval.vectors.pgvector import PgVectorIndex
from ragapi.tenants.service import create_tenant

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval" / "scifact-train"
# name, fusion, dense weight, BM25 candidate budget (None: the setting's; 0: the exact scan)
VARIANTS: list[tuple[str, Fusion, float, int | None]] = [
    ("dense only", Fusion.CONVEX, 1.0, None),
    ("BM25 only", Fusion.CONVEX, 0.0, None),
    ("BM25 only, exact scan", Fusion.CONVEX, 0.0, 0),
    ("RRF (k=60)", Fusion.RRF, 0.5, None),
    ("convex w=0.3", Fusion.CONVEX, 0.3, None),
    ("convex w=0.4 (default)", Fusion.CONVEX, 0.4, None),
    ("convex w=0.4, exact BM25 scan", Fusion.CONVEX, 0.4, 0),
    ("convex w=0.5", Fusion.CONVEX, 0.5, None),
]


def machine() -> dict[str, object]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1] if Path("/proc/meminfo").exists() else "?"
    cpu = "?"
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_kib": mem, "python": platform.python_version()}


async def main(folder: Path, split: str) -> dict[str, object]:
    data = load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="ragapi-bench-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        state = await AppState.start(settings)
        try:
            tenant = await create_tenant(state.db, "bench")
            started = time.perf_counter()
            docs_per_s = await ingest_corpus(state.pipeline, tenant.tenant_id, data.corpus)
            ingest_s = time.perf_counter() - started
            rows = []
            for name, fusion, weight, budget in VARIANTS:
                variant = settings.model_copy(update={"fusion": fusion, "fusion_dense_weight": weight})
                indexes = state.indexes
                if budget is not None:
                    indexes = {**indexes, "pgvector": PgVectorIndex(state.db, settings.hnsw_ef_search, budget)}
                search = HybridSearch(state.db, state.embeddings, variant, indexes)
                rows.append({"variant": name, **await run_queries(search, tenant.tenant_id, data)})
        finally:
            await state.stop()
    return {
        "dataset": str(folder.name),
        "split": split,
        "documents": len(data.corpus),
        "queries": len(data.queries),
        "chunk_size_tokens": settings.chunk_size_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "ingest_seconds": round(ingest_s, 1),
        "ingest_docs_per_s": round(docs_per_s, 1),
        "machine": machine(),
        "results": rows,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    report = asyncio.run(main(args.folder, args.split))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "scifact.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
