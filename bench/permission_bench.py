"""The cost of per-document permissions on retrieval: dense (HNSW) and sparse (BM25) search under the
documents' row-level security, against the unrestricted path.

    uv run python bench/permission_bench.py [--chunks 10000 100000] [--queries 200] [--k 10]

For each size a throwaway embedded PostgreSQL holds one tenant's knowledge base of synthetic chunks (10
per document, random 384-dimension vectors, one to three BM25 terms of 50), then each scenario is timed
with the statements retrieval runs (`retrieval.chunks.dense_search` with its iterative-scan settings,
`sparse_search`), reading as a principal that is in no access list:

* unrestricted: no document has an access list (today's path; the policy's first test passes)
* few restricted: 5% of the documents are restricted to someone else
* most restricted: 95% are, so the search must skip 19 of every 20 neighbours it finds
* most restricted, insider: the same, read by the principal the 95% are restricted to

Each share is loaded afresh with the documents' access set as ingestion sets it (restricting them
afterwards rewrites every chunk, which is measured on its own): last, 20% of the remaining tenant-wide
documents are restricted in one statement, the bulk access route's, and the chunks rewritten per second
reported.

Reports p50/p95 per scenario and how many of the k results came back (it must stay k). Writes
bench/results/permissions.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

# a sibling module: run as a script (`python bench/...py`), whose folder is on the import path
from run_scifact import machine
from sqlalchemy import text

from ragapi.core.access import ReaderView
from ragapi.core.database import Database, start_embedded_postgres
from ragapi.core.migrate import upgrade
from ragapi.core.settings import Settings
from ragapi.evaluation.metrics import percentile
from ragapi.retrieval.bm25 import kb_prefix
from ragapi.retrieval.chunks import dense_search, dense_search_settings, ensure_dense_index, sparse_search
from ragapi.retrieval.knowledge_bases import KnowledgeBase

DIM = 384
CHUNKS_PER_DOCUMENT = 10
TERMS = 50
EF_SEARCH = 40  # the service's default (HNSW_EF_SEARCH)
BUDGET = Settings(_env_file=None).bm25_candidate_budget  # type: ignore[call-arg]  # the term index's, by default
SCENARIOS = {  # share of documents restricted, and whether the reader is in their access list
    "unrestricted": (0.0, False),
    "few restricted (5%)": (0.05, False),
    "most restricted (95%)": (0.95, False),
    "most restricted (95%), insider": (0.95, True),
}


async def build(db: Database, tenant: uuid.UUID, chunks: int, share: float, insider: uuid.UUID) -> None:
    """The knowledge base with `share` of its documents restricted to `insider` from the start, as ingestion
    with an access list writes them (the insert trigger gives each chunk its document's readers)."""
    documents = chunks // CHUNKS_PER_DOCUMENT
    async with db.admin_session() as session:
        await session.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'bench')"), {"t": tenant})
        await session.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim, chunk_count, "
                "token_count) VALUES (:t, :t, 'default', 'm', :dim, :n, :n)"
            ),
            {"t": tenant, "dim": DIM, "n": chunks},
        )
        await session.execute(
            text(
                "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, "
                "chunk_count, size_bytes, access, readers) SELECT gen_random_uuid(), :t, :t, 'synthetic', "
                "'text/plain', md5(g::text), :c, 0, "
                "CASE WHEN r THEN jsonb_build_object('users', jsonb_build_array(CAST(:u AS text))) END, "
                "CASE WHEN r THEN ARRAY[CAST(:u AS uuid)] END "
                "FROM generate_series(1, :n) g, LATERAL (SELECT random() < :share AND g > 0 AS r) x"
            ),
            {"t": tenant, "c": CHUNKS_PER_DOCUMENT, "n": documents, "u": str(insider), "share": share},
        )
        await session.execute(
            text(
                "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ord, text, title, "
                "embedding_model, embedding_dim, embedding, sparse, token_count, term_keys) "
                "SELECT gen_random_uuid(), :t, :t, d.id, o, 'synthetic', 'synthetic', 'm', :dim, "
                "(SELECT array_agg(random() - 0.5) FROM generate_series(1, :dim) x WHERE o IS NOT NULL "
                "  AND d.id IS NOT NULL)::vector, "
                "('{' || term || chr(58) || '1}/1000000000')::sparsevec, 1, ARRAY[CAST(:prefix AS bigint) + term] "
                "FROM documents d, generate_series(0, :c - 1) o, "
                # a hash, not random(): the expression may be evaluated once per use of `term`
                f"LATERAL (SELECT 1 + abs(hashtext(d.id::text || o::text)) % {TERMS} AS term) t WHERE d.tenant_id = :t"
            ),
            {"t": tenant, "dim": DIM, "c": CHUNKS_PER_DOCUMENT, "prefix": kb_prefix(tenant)},
        )
        await session.execute(
            text(
                "INSERT INTO sparse_terms (tenant_id, knowledge_base_id, term, df) "
                "SELECT :t, :t, g, :df FROM generate_series(1, :terms) g"
            ),
            {"t": tenant, "terms": TERMS, "df": chunks // TERMS},
        )
    async with db.admin_session() as session:
        await session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        await ensure_dense_index(session, DIM)
        await session.execute(text("ANALYZE documents, chunks"))


async def clear(db: Database) -> None:
    """An empty database again, the vector index dropped so that the next build creates it in bulk."""
    async with db.admin_session() as session:
        await session.execute(text(f"DROP INDEX IF EXISTS chunks_embedding_hnsw_{DIM}"))
        await session.execute(text("TRUNCATE tenants CASCADE"))


async def change_access(db: Database, tenant: uuid.UUID, share: float, principal: uuid.UUID) -> dict[str, Any]:
    """Restrict `share` of the tenant-wide documents to `principal` in one statement, as the bulk access
    route does: every chunk of theirs is rewritten with its new readers (and enters each index again)."""
    started = time.perf_counter()
    async with db.admin_session() as session:
        changed = await session.execute(
            text(
                "UPDATE documents SET access = jsonb_build_object('users', jsonb_build_array(CAST(:u AS text))), "
                "readers = ARRAY[CAST(:u AS uuid)] WHERE tenant_id = :t AND readers IS NULL AND random() < :share "
                "RETURNING chunk_count"
            ),
            {"t": tenant, "u": str(principal), "share": share},
        )
        chunks = sum(row.chunk_count for row in changed)
    seconds = time.perf_counter() - started
    return {"chunks": chunks, "seconds": round(seconds, 1), "chunks_per_s": round(chunks / seconds, 1)}


async def measure(db: Database, kb: KnowledgeBase, view: ReaderView, queries: int, k: int) -> dict[str, Any]:
    rng = random.Random(7)
    dense_ms, sparse_ms, dense_n, sparse_n = [], [], [], []
    for _ in range(queries):
        vector = [rng.random() - 0.5 for _ in range(DIM)]
        started = time.perf_counter()
        local = dense_search_settings(EF_SEARCH, k)
        async with db.tenant_session(kb.tenant_id, local=local, view=view) as session:
            found = await dense_search(session, kb.tenant_id, kb, vector, k, {})
        dense_ms.append((time.perf_counter() - started) * 1000)
        dense_n.append(len(found))
        terms = Counter({rng.randint(1, TERMS): 1, rng.randint(1, TERMS): 1})
        started = time.perf_counter()
        async with db.tenant_session(kb.tenant_id, view=view) as session:
            found = await sparse_search(session, kb.tenant_id, kb, terms, k, {}, BUDGET)
        sparse_ms.append((time.perf_counter() - started) * 1000)
        sparse_n.append(len(found))
    return {
        "dense_p50_ms": round(percentile(dense_ms, 50), 2),
        "dense_p95_ms": round(percentile(dense_ms, 95), 2),
        "dense_min_results": min(dense_n),
        "sparse_p50_ms": round(percentile(sparse_ms, 50), 2),
        "sparse_p95_ms": round(percentile(sparse_ms, 95), 2),
        "sparse_min_results": min(sparse_n),
    }


async def run_size(chunks: int, queries: int, k: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ragapi-perm-bench-") as tmp:
        data_dir = Path(tmp)
        url = start_embedded_postgres(data_dir / "pgdata")
        upgrade(url, "ragapi_app")
        db = Database.connect(Settings(data_dir=data_dir), url)
        tenant, insider, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        kb = KnowledgeBase(
            id=tenant,
            tenant_id=tenant,
            name="default",
            embedding_model="m",
            embedding_dim=DIM,
            chunk_count=chunks,
            token_count=chunks,
            version=1,
        )
        results: dict[str, Any] = {"chunks": chunks, "scenarios": {}}
        built = None
        for name, (share, inside) in SCENARIOS.items():
            if built != share:  # the insider scenario reads the same data as the one before it
                await clear(db)
                started = time.perf_counter()
                await build(db, tenant, chunks, share, insider)
                results[f"build_s_{share:.0%}"] = round(time.perf_counter() - started, 1)
                built = share
            view = ReaderView.of(insider if inside else stranger, version=1)
            await measure(db, kb, view, 10, k)  # warm the caches
            results["scenarios"][name] = await measure(db, kb, view, queries, k)
            print(chunks, name, results["scenarios"][name], flush=True)  # noqa: T201
        # last: a bulk change of access on the 95 % data (the 5 % still tenant-wide)
        results["access_change"] = await change_access(db, tenant, 0.2, stranger)
        print(chunks, "access change", results["access_change"], flush=True)  # noqa: T201
        await db.dispose()
        return results


async def main(sizes: list[int], queries: int, k: int) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine(), "load_average": os.getloadavg(), "k": k, "sizes": []}
    for chunks in sizes:
        report["sizes"].append(await run_size(chunks, queries, k))
    report["load_average_after"] = os.getloadavg()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    report = asyncio.run(main(args.chunks, args.queries, args.k))
    out = Path(__file__).parent / "results" / "permissions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))  # noqa: T201
