"""`ragapi eval`: measure retrieval quality on a BEIR-layout folder through the real pipeline.

Two modes. A full BEIR set: the corpus is ingested into a throwaway tenant (deleted afterwards). A
tenant's exported feedback (`ragapi feedback export`, queries and qrels naming document ids): the
queries run against that tenant's live knowledge base, a regression gate for its own data. Either way
every query goes through the hybrid retriever the API uses, and chunk hits are folded into document
rankings (best chunk wins).
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput
from ragapi.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from ragapi.ingestion.pipeline import IngestItem, IngestPipeline
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.chunks import Hit
from ragapi.retrieval.hybrid import HybridSearch
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.tenants.service import create_tenant

BEIR_ID = "beir_id"


@dataclass(frozen=True, slots=True)
class BeirSet:
    corpus: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: Path, split: str, with_corpus: bool = True) -> BeirSet:
    corpus_path, queries_path, qrels_path = (
        folder / "corpus.jsonl",
        folder / "queries.jsonl",
        folder / "qrels" / f"{split}.tsv",
    )
    for path in (corpus_path, queries_path, qrels_path) if with_corpus else (queries_path, qrels_path):
        if not path.is_file():
            raise InvalidInput(f"not a BEIR folder: {path} is missing")
    corpus = [json.loads(line) for line in corpus_path.read_text().splitlines() if line.strip()] if with_corpus else []
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    for line in queries_path.read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return BeirSet(corpus=corpus, queries=queries, qrels=qrels)


async def ingest_corpus(
    pipeline: IngestPipeline,
    tenant_id: Any,
    corpus: list[dict[str, Any]],
    batch: int = 64,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Ingest through the real pipeline; returns documents per second."""
    started = time.perf_counter()
    for start in range(0, len(corpus), batch):
        items = [
            IngestItem(
                data=doc["text"].encode(),
                filename=None,
                content_type="text/plain",
                title=doc.get("title") or doc["_id"],
                metadata={BEIR_ID: doc["_id"]},
                external_id=doc["_id"],
            )
            for doc in corpus[start : start + batch]
        ]
        report = await pipeline.run(tenant_id, items)
        failed = [r for r in report.results if r.status == "failed"]
        if failed:
            raise InvalidInput(f"corpus document failed to ingest: {failed[0].error}")
        if progress:
            progress(len(items))
    return len(corpus) / (time.perf_counter() - started)


def beir_id(hit: Hit) -> str:
    return str(hit.metadata.get(BEIR_ID))


def document_id(hit: Hit) -> str:
    return str(hit.document_id)


async def run_queries(
    search: HybridSearch,
    tenant_id: uuid.UUID,
    data: BeirSet,
    depth: int = 100,
    key: Callable[[Hit], str] = beir_id,
    kbs: Sequence[KnowledgeBase] | None = None,
) -> dict[str, Any]:
    """Every query through the service's hybrid search (whose settings may vary fusion for comparisons),
    over `kbs` (None: the tenant's default knowledge base)."""
    ndcg, recall, mrr, latency = [], [], [], []
    k = max(depth * 2, search.settings.retrieval_candidates)
    for qid, query in data.queries.items():
        started = time.perf_counter()
        hits = (await search.search(tenant_id, query, k, {}, kbs)).hits
        latency.append((time.perf_counter() - started) * 1000)
        ranked: list[str] = []
        for hit in hits:
            doc = key(hit)
            if doc not in ranked:
                ranked.append(doc)
        ndcg.append(ndcg_at_k(ranked, data.qrels[qid], 10))
        recall.append(recall_at_k(ranked, data.qrels[qid], 100))
        mrr.append(mrr_at_k(ranked, data.qrels[qid], 10))
    n = len(ndcg) or 1
    return {
        "queries": len(ndcg),
        "ndcg@10": round(sum(ndcg) / n, 4),
        "recall@100": round(sum(recall) / n, 4),
        "mrr@10": round(sum(mrr) / n, 4),
        "latency_ms_p50": round(percentile(latency, 50), 2),
        "latency_ms_p95": round(percentile(latency, 95), 2),
    }


async def evaluate(
    db: Database,
    ingest: IngestPipeline,
    search: HybridSearch,
    folder: Path,
    split: str = "test",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """A BEIR dataset in a throwaway tenant: ingested through the service's pipeline, queried through its
    search, then deleted (vectors in any backend included)."""
    data = load_beir(folder, split)
    tenant = await create_tenant(db, f"eval-{folder.name}")
    try:
        docs_per_s = await ingest_corpus(ingest, tenant.tenant_id, data.corpus, progress=progress)
        result = await run_queries(search, tenant.tenant_id, data)
    finally:
        async with db.tenant_session(tenant.tenant_id) as session:
            kb = await knowledge_bases.get(session, tenant.tenant_id)
        if kb is not None and kb.vector_backend in search.indexes:
            await search.indexes[kb.vector_backend].drop_tenant(tenant.tenant_id)
        async with db.admin_session() as session:
            await session.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": tenant.tenant_id})
    return {
        "dataset": folder.name,
        "split": split,
        "documents": len(data.corpus),
        "ingest_docs_per_s": round(docs_per_s, 1),
        "fusion": search.settings.fusion.value,
        **result,
    }


async def evaluate_tenant(
    search: HybridSearch, folder: Path, tenant_id: uuid.UUID, split: str = "test", kb: KnowledgeBase | None = None
) -> dict[str, Any]:
    """Replay an exported feedback set against one of the tenant's knowledge bases (None: its default)."""
    data = load_beir(folder, split, with_corpus=False)
    if not data.queries:
        raise InvalidInput("the set has no queries with relevance judgements")
    result = await run_queries(search, tenant_id, data, key=document_id, kbs=[kb] if kb is not None else None)
    named = {"knowledge_base": kb.name} if kb is not None else {}
    return {"dataset": folder.name, "split": split, "tenant_id": str(tenant_id), **named, **result}


def write_beir(folder: Path, exported: dict[str, list[dict[str, Any]]], split: str = "test") -> None:
    """Write `GET /v1/feedback/export` output as queries.jsonl and qrels/<split>.tsv."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in exported["queries"]))
    with (folder / "qrels" / f"{split}.tsv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["query-id", "corpus-id", "score"])
        writer.writerows([r["query-id"], r["corpus-id"], r["score"]] for r in exported["qrels"])
