"""Retrieval at scale: one tenant of N chunks beside four tenants of 2,000, on the embedded PostgreSQL.

    uv run python bench/scale_bench.py --chunks 1000000 --data-dir /tmp/scale-1m --load-only
    uv run python bench/scale_bench.py --chunks 1000000 --data-dir /tmp/scale-1m --measure-only

Loading (skipped when `--data-dir` already holds a loaded database): the project's migrations, then a
synthetic corpus bulk-copied into `chunks`, `documents` and `sparse_terms` exactly as ingestion would
write them (BM25 weights, term keys, document frequencies, the knowledge base's counts). The text is
drawn from a Zipfian vocabulary (exponent 1, the head made of the real words of the base texts in their
own frequency order, a Heaps-law tail of made-up words), each chunk mixing that background with the words
of one of many topics; its vector is the MiniLM embedding of one of a few thousand real texts (SciFact
abstracts when `--base` points at them, else the paragraphs of this repository's docs) with Gaussian noise,
so chunks of a topic cluster as real ones do. The vector indexes are built after the copy.

Measuring: 200 queries of 3-10 words drawn from random chunks of the big tenant (vectors are those of the
chunk's topic with noise, so no embedding is timed), k = `retrieval_candidates` per side:
p50/p95 of BM25, dense and hybrid retrieval single-client, hybrid queries per second at 16 clients, the
same hybrid for a 2,000-chunk tenant beside it, top-10 overlap of BM25 against the exact scan, index sizes,
and the write cost of a 10-chunk document (insert, replace, delete) in the big tenant. One JSON line.

`--exact` measures today's design (BM25 by an exact scan) and `--pg-defaults` PostgreSQL's own
memory settings, for the before/after table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import statistics
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy import text

from ragapi.api.state import AppState
from ragapi.core.settings import Settings
from ragapi.evaluation.metrics import percentile
from ragapi.ingestion.chunk_store import ChunkRow, add_chunks, lock_knowledge_base, remove_document_chunks
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import STOPWORDS, BM25Params, analyze, term_counts, term_id, term_keys
from ragapi.retrieval.chunks import exact_sparse_search, sparse_search
from ragapi.retrieval.hybrid import EmbeddedQuery, HybridSearch
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.tenants.service import create_tenant

REPO = Path(__file__).resolve().parent.parent
SCIFACT = Path("/work/shared/eval/scifact-train/corpus.jsonl")
SMALL_TENANTS = 4
SMALL_CHUNKS = 2_000
CHUNKS_PER_DOCUMENT = 10
QUERIES = 200  # --queries
CLIENTS = 16
TOPIC_SHARE = 0.35  # of a chunk's words drawn from its topic
TOPIC_WORDS = 60
NOISE = 0.7  # norm of the Gaussian noise added to a unit base vector (cosine to it about 0.82)
PARAMS = BM25Params()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)  # noqa: T201


# --- the synthetic corpus ----------------------------------------------------------------------------------


def base_texts(base: Path | None, limit: int) -> list[str]:
    """Real texts whose embeddings the chunk vectors are drawn around, and whose words head the vocabulary."""
    texts: list[str] = []
    if base is not None and base.exists():
        with base.open() as f:
            for line in f:
                doc = json.loads(line)
                texts.append(f"{doc.get('title', '')}\n{doc['text']}")
                if len(texts) >= limit:
                    break
        return texts
    for path in sorted((REPO / "docs").rglob("*.md")):
        texts += [p for p in re.split(r"\n\s*\n", path.read_text()) if len(p.split()) >= 8]
    return texts[:limit]


def made_up_word(n: int) -> str:
    """A word no text contains, stable for `n` (consonant-vowel syllables: the stemmer leaves them alone)."""
    consonants, vowels = "bdfgklmnprtvz", "aiou"
    syllables = []
    n += 1
    while n:
        n, r = divmod(n, len(consonants) * len(vowels))
        syllables.append(consonants[r // len(vowels)] + vowels[r % len(vowels)])
    return "q" + "".join(syllables) + "x"


class Corpus:
    """Vocabulary, topics and base vectors; chunks are generated deterministically from a seed."""

    def __init__(self, texts: list[str], vectors: np.ndarray, chunks: int, seed: int) -> None:
        counts: dict[str, int] = {}
        surface: dict[str, tuple[int, str]] = {}
        for passage in texts:
            for word in re.findall(r"[a-z]{3,}", passage.lower()):
                if word in STOPWORDS:
                    continue
                counts[word] = counts.get(word, 0) + 1
        for word, n in counts.items():  # one surface form per stem: the most frequent
            stems = analyze(word)
            if len(stems) == 1 and surface.get(stems[0], (0, ""))[0] < n:
                surface[stems[0]] = (n, word)
        head = [w for _, w in sorted(surface.values(), reverse=True)]
        size = max(len(head) + 1_000, 20_000 + int(0.3 * chunks))  # Heaps: the vocabulary grows with the corpus
        words: list[str] = []
        ids: dict[int, str] = {}
        candidates = iter(head + [made_up_word(n) for n in range(2 * size)])
        while len(words) < size:  # one word per term id (stems and hashes may coincide)
            word = next(candidates)
            stems = analyze(word)
            if len(stems) == 1 and term_id(stems[0]) not in ids:
                ids[term_id(stems[0])] = word
                words.append(word)
        self.words = np.array(words, dtype=object)
        self.term_ids = np.array(list(ids), dtype=np.int64)
        ranks = np.arange(1, size + 1, dtype=np.float64)
        self.cdf = np.cumsum(1.0 / ranks)
        self.cdf /= self.cdf[-1]
        self.vectors = vectors
        rng = np.random.default_rng(seed)
        self.topics = max(50, chunks // 300)
        # a topic's words come from below the head (not "cell", "study"): ranks 300 .. size
        self.topic_words = rng.integers(min(300, size // 2), size, size=(self.topics, TOPIC_WORDS))
        self.topic_cdf = np.cumsum(1.0 / np.arange(1, TOPIC_WORDS + 1))
        self.topic_cdf /= self.topic_cdf[-1]
        self.topic_base = rng.integers(0, len(vectors), size=self.topics)

    def noisy(self, rng: np.random.Generator, topics: np.ndarray) -> np.ndarray:
        base = self.vectors[self.topic_base[topics]]
        noise = rng.standard_normal(base.shape).astype(np.float32) * (NOISE / np.sqrt(base.shape[1]))
        v = base + noise
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def batch(self, seed: int, n: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """`n` chunks: their topics, word indexes and vectors."""
        rng = np.random.default_rng(seed)
        topics = rng.integers(0, self.topics, size=n)
        lengths = np.clip(rng.lognormal(np.log(90), 0.45, size=n).astype(np.int64), 12, 400)
        total = int(lengths.sum())
        background = np.searchsorted(self.cdf, rng.random(total))
        topical = self.topic_words[
            np.repeat(topics, lengths), np.searchsorted(self.topic_cdf, rng.random(total)).clip(0, TOPIC_WORDS - 1)
        ]
        mixed = np.where(rng.random(total) < TOPIC_SHARE, topical, background)
        return topics, np.split(mixed, np.cumsum(lengths)[:-1]), self.noisy(rng, topics)


def sparse_binary(term_ids: np.ndarray, weights: np.ndarray) -> bytes:
    """pgvector's binary `sparsevec`: dim, nnz, unused, 0-based indices, float4 values."""
    from ragapi.retrieval.bm25 import SPARSE_DIM

    order = np.argsort(term_ids)
    return (
        struct.pack(">iii", SPARSE_DIM, len(term_ids), 0)
        + (term_ids[order] - 1).astype(">i4").tobytes()
        + weights[order].astype(">f4").tobytes()
    )


def vector_binary(v: np.ndarray) -> bytes:
    return struct.pack(">hh", len(v), 0) + v.astype(">f4").tobytes()


def chunk_terms(corpus: Corpus, words: np.ndarray, avgdl: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(term ids, BM25 document weights, length) as ingestion computes them."""
    idx, tf = np.unique(words, return_counts=True)
    length = len(words)
    norm = PARAMS.k1 * (1 - PARAMS.b + PARAMS.b * length / avgdl)
    return corpus.term_ids[idx], tf * (PARAMS.k1 + 1) / (tf + norm), length


# --- loading ------------------------------------------------------------------------------------------------


async def copy_tenant(
    conn: asyncpg.Connection, corpus: Corpus, tenant_id: uuid.UUID, kb: KnowledgeBase, chunks: int, seed: int
) -> list[dict[str, Any]]:
    """Bulk-copy a tenant's chunks; returns a few sample chunks (topic, words) for queries."""
    avgdl = float(np.exp(np.log(90) + 0.45**2 / 2))  # the mean of the length distribution
    df = np.zeros(len(corpus.words), dtype=np.int64)
    samples: list[dict[str, Any]] = []
    total_tokens = 0
    step = 20_000
    started = time.perf_counter()
    for start in range(0, chunks, step):
        n = min(step, chunks - start)
        topics, words, vectors = corpus.batch(seed * 1_000_003 + start, n)
        docs, rows = [], []
        for i in range(n):
            if i % CHUNKS_PER_DOCUMENT == 0:
                doc_id = uuid.uuid4()
                size = min(CHUNKS_PER_DOCUMENT, n - i)
                docs.append(
                    (doc_id, tenant_id, kb.id, f"doc {start + i}", "text/plain",
                     hashlib.sha256(doc_id.bytes).hexdigest(), "{}", size, 1000 * size)
                )  # fmt: skip
            ids, weights, length = chunk_terms(corpus, words[i], avgdl)
            df[np.unique(words[i])] += 1
            total_tokens += length
            rows.append(
                (uuid.uuid4(), tenant_id, kb.id, doc_id, i % CHUNKS_PER_DOCUMENT, " ".join(corpus.words[words[i]]),
                 f"doc {start + i}", "{}", kb.embedding_model, kb.embedding_dim, vector_binary(vectors[i]),
                 sparse_binary(ids, weights), term_keys(kb.id, ids.tolist()), length)
            )  # fmt: skip
            if len(samples) < 4 * QUERIES and random.Random(start + i + seed).random() < 4 * QUERIES / chunks:
                samples.append({"topic": int(topics[i]), "words": words[i].tolist()})
        await conn.copy_records_to_table(
            "documents",
            records=docs,
            columns=["id", "tenant_id", "knowledge_base_id", "title", "content_type", "content_hash", "metadata",
                     "chunk_count", "size_bytes"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "chunks",
            records=rows,
            columns=["id", "tenant_id", "knowledge_base_id", "document_id", "ord", "text", "title", "metadata",
                     "embedding_model", "embedding_dim", "embedding", "sparse", "term_keys", "token_count"],
        )  # fmt: skip
        done = start + n
        rate = done / (time.perf_counter() - started)
        log(f"tenant {tenant_id}: {done:,} of {chunks:,} chunks ({rate:,.0f}/s)")
    present = np.nonzero(df)[0]
    await conn.copy_records_to_table(
        "sparse_terms",
        records=[(tenant_id, kb.id, int(corpus.term_ids[i]), int(df[i])) for i in present],
        columns=["tenant_id", "knowledge_base_id", "term", "df"],
    )
    await conn.execute(
        "UPDATE knowledge_bases SET chunk_count = $2, token_count = $3, version = version + 1 WHERE id = $1",
        kb.id,
        chunks,
        total_tokens,
    )
    return samples


async def binary_codecs(conn: asyncpg.Connection) -> None:
    """The vectors arrive already in pgvector's binary form."""
    for name in ("vector", "sparsevec"):
        await conn.set_type_codec(name, schema="public", encoder=bytes, decoder=bytes, format="binary")


def embed_texts(settings: Settings, texts: list[str]) -> np.ndarray:
    from ragapi.embedding import build_embeddings

    embeddings = build_embeddings(settings)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 64):
        vectors += embeddings.embed_documents(texts[start : start + 64])
        if start % 640 == 0:
            log(f"embedded {start + 64:,} of {len(texts):,} base texts")
    return np.array(vectors, dtype=np.float32)


def settings_for(data_dir: Path, pg_defaults: bool = False, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "db_pool_size": 40, "query_log_enabled": False} | overrides
    if pg_defaults:  # PostgreSQL's own memory settings, as the embedded server had them before tuning
        values |= {"pg_shared_buffers_mb": 128, "pg_work_mem_mb": 4, "pg_maintenance_work_mem_mb": 64,
                   "pg_effective_cache_size_mb": 4096}  # fmt: skip
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def load(data_dir: Path, chunks: int, base: Path | None, base_count: int) -> None:
    settings = settings_for(data_dir, pg_maintenance_work_mem_mb=4096)
    texts = base_texts(base, base_count)
    log(f"embedding {len(texts):,} base texts")
    vectors = embed_texts(settings, texts)
    state = await AppState.start(settings)
    try:
        tenants = [await create_tenant(state.db, f"scale-{n}") for n in range(1 + SMALL_TENANTS)]
        conn = await asyncpg.connect(state.db.url)
        try:
            await binary_codecs(conn)
            await conn.execute("SET maintenance_work_mem = '4GB'")
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks' "
                "AND (indexname LIKE 'chunks_embedding_hnsw_%' OR indexname = 'chunks_term_keys')"
            )
            for row in indexes:  # built once after the copy, not row by row
                await conn.execute(f"DROP INDEX {row['indexname']}")
            queries: dict[str, Any] = {}
            for n, tenant in enumerate(tenants):
                tid = tenant.tenant_id
                async with state.db.admin_session() as session:
                    kb = await lock_knowledge_base(session, tid, tid, *embedding_of(state))
                size = chunks if n == 0 else SMALL_CHUNKS
                corpus = Corpus(texts, vectors, size, seed=n)
                samples = await copy_tenant(conn, corpus, tid, kb, size, seed=n)
                queries[str(tid)] = make_queries(corpus, samples, seed=n)
            for row in indexes:
                log(f"building {row['indexname']}")
                started = time.perf_counter()
                await conn.execute(row["indexdef"])
                log(f"built {row['indexname']} in {time.perf_counter() - started:.0f} s")
            await conn.execute("VACUUM ANALYZE chunks")
            await conn.execute("VACUUM ANALYZE documents")
            await conn.execute("VACUUM ANALYZE sparse_terms")
        finally:
            await conn.close()
        meta = {"chunks": chunks, "big": str(tenants[0].tenant_id), "small": [str(t.tenant_id) for t in tenants[1:]]}
        (data_dir / "scale.json").write_text(json.dumps(meta | {"queries": queries}))
    finally:
        await state.stop()


def embedding_of(state: AppState) -> tuple[str, int]:
    from ragapi.embedding import embedding_identity

    return embedding_identity(state.embeddings)


def make_queries(corpus: Corpus, samples: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """3-10 words of a sampled chunk, a vector near the chunk's topic."""
    rng = np.random.default_rng(seed + 77)
    picked = samples[:QUERIES]
    out = []
    vectors = corpus.noisy(rng, np.array([s["topic"] for s in picked], dtype=np.int64))
    for sample, vector in zip(picked, vectors, strict=True):
        words = list(dict.fromkeys(sample["words"]))
        n = int(rng.integers(3, 11))
        chosen = rng.choice(len(words), size=min(n, len(words)), replace=False)
        out.append({"text": " ".join(corpus.words[words[i]] for i in sorted(chosen)), "vector": vector.tolist()})
    return out


# --- measuring ----------------------------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(samples, 50), 1), "p95": round(percentile(samples, 95), 1)}


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def single(fns: list[Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    await fns[0]()  # warm
    return summary([await timed(fn) for fn in fns])


async def throughput(fns: list[Callable[[], Awaitable[Any]]], clients: int) -> float:
    queue: Iterator[Callable[[], Awaitable[Any]]] = iter(fns * 2)

    async def client() -> int:
        done = 0
        for fn in queue:
            await fn()
            done += 1
        return done

    started = time.perf_counter()
    done = sum(await asyncio.gather(*(client() for _ in range(clients))))
    return round(done / (time.perf_counter() - started), 1)


async def measure(data_dir: Path, exact: bool, pg_defaults: bool, queries: int, writes: int) -> dict[str, Any]:
    meta = json.loads(await asyncio.to_thread((data_dir / "scale.json").read_text))
    settings = settings_for(data_dir, pg_defaults, **({"bm25_candidate_budget": 0} if exact else {}))
    state = await AppState.start(settings)
    try:
        db, depth = state.db, settings.retrieval_candidates
        big, small = uuid.UUID(meta["big"]), uuid.UUID(meta["small"][0])
        kbs: dict[uuid.UUID, KnowledgeBase] = {}
        for tid in (big, small):
            async with db.tenant_session(tid) as session:
                kb = await knowledge_bases.get(session, tid)
            assert kb is not None
            kbs[tid] = kb
        search = HybridSearch(db, state.embeddings, settings, state.indexes)
        index = state.indexes["pgvector"]
        qs = {tid: meta["queries"][str(tid)][:queries] for tid in (big, small)}

        def bm25(tid: uuid.UUID, q: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            return lambda: index.sparse_candidates(tid, kbs[tid], term_counts(q["text"]), depth, {})

        def dense(tid: uuid.UUID, q: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            return lambda: index.dense_candidates(tid, kbs[tid], q["vector"], depth, {})

        def hybrid(tid: uuid.UUID, q: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            embedded = EmbeddedQuery(q["vector"], 0.0)
            return lambda: search.search(tid, q["text"], 10, {}, kbs=[kbs[tid]], embedded=embedded)

        report: dict[str, Any] = {"chunks": meta["chunks"], "design": "exact scan" if exact else "term index"}
        report["pg"] = await pg_settings(db.url)
        log("warming the caches (each query once)")
        for q in qs[big] + qs[small]:
            await hybrid(big if q in qs[big] else small, q)()
        log("single client")
        report["bm25_ms"] = await single([bm25(big, q) for q in qs[big]])
        report["dense_ms"] = await single([dense(big, q) for q in qs[big]])
        report["hybrid_ms"] = await single([hybrid(big, q) for q in qs[big]])
        report["small_tenant_hybrid_ms"] = await single([hybrid(small, q) for q in qs[small]])
        log("16 clients")
        report["hybrid_qps_16"] = await throughput([hybrid(big, q) for q in qs[big]], CLIENTS)
        if not exact:
            log("overlap with the exact scan")
            report["top10_overlap"] = await overlap(db, big, kbs[big], qs[big], settings.bm25_candidate_budget)
        report["sizes_mb"] = await sizes(db.url)
        log("write cost")
        report["write_ms_per_document"] = await write_cost(state, big, kbs[big], writes)
        report["load"] = os.getloadavg()
        report["cpus"] = os.cpu_count()
        return report
    finally:
        await state.stop()


async def overlap(db: Any, tid: uuid.UUID, kb: KnowledgeBase, queries: list[dict[str, Any]], budget: int) -> float:
    shares = []
    for q in queries:
        terms = term_counts(q["text"])
        async with db.tenant_session(tid) as session:
            exact = await exact_sparse_search(session, tid, kb, terms, 10, {})
        async with db.tenant_session(tid) as session:
            found = await sparse_search(session, tid, kb, terms, 10, {}, budget)
        if exact:
            # ties at the 10th score make either chunk correct
            tenth = exact[-1].score
            right = {c.key for c in exact if c.score > tenth + 1e-5}
            tied = {c.key for c in exact if abs(c.score - tenth) <= 1e-5}
            got = [c for c in found if c.key in right or c.key in tied or abs(c.score - tenth) <= 1e-5]
            shares.append(min(len(got), len(exact)) / len(exact))
    return round(statistics.mean(shares), 4)


async def pg_settings(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        names = ["shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "jit"]
        return {n: await conn.fetchval(f"SHOW {n}") for n in names}
    finally:
        await conn.close()


async def sizes(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) AS size FROM pg_class c "
            "WHERE c.relname IN ('chunks', 'chunks_term_keys', 'sparse_terms', 'sparse_terms_pkey') "
            "OR c.relname LIKE 'chunks_embedding_hnsw_%'"
        )
        return {r["relname"]: round(r["size"] / 2**20, 1) for r in rows}
    finally:
        await conn.close()


async def write_cost(state: AppState, tid: uuid.UUID, kb: KnowledgeBase, writes: int) -> dict[str, float]:
    """A 10-chunk document written, replaced (delete + insert in one transaction) and deleted, `writes` times,
    through the chunk store's own statements (no embedding)."""
    corpus_rng = np.random.default_rng(5)
    inserts, replaces, deletes = [], [], []
    model, dim = kb.embedding_model, kb.embedding_dim

    def rows() -> list[ChunkRow]:
        out = []
        for ord in range(CHUNKS_PER_DOCUMENT):
            words = [f"w{int(x)}" for x in corpus_rng.zipf(1.3, size=90) % 50_000]
            counts = term_counts(" ".join(words))
            vector = corpus_rng.standard_normal(dim).astype(np.float32)
            out.append(
                ChunkRow(ord, " ".join(words), "write", {}, (vector / np.linalg.norm(vector)).tolist(),
                         dict.fromkeys(counts, 1.0), sum(counts.values()))
            )  # fmt: skip
        return out

    for n in range(writes):
        doc = uuid.uuid4()
        chunks = rows()
        started = time.perf_counter()
        async with state.db.tenant_session(tid) as session:
            locked = await lock_knowledge_base(session, tid, kb.id, model, dim)
            await _document(session, tid, locked, doc, n)
            await add_chunks(session, tid, doc, locked, chunks)
        inserts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        async with state.db.tenant_session(tid) as session:
            locked = await lock_knowledge_base(session, tid, kb.id, model, dim)
            await remove_document_chunks(session, tid, locked, doc)
            await add_chunks(session, tid, doc, locked, rows())
        replaces.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        async with state.db.tenant_session(tid) as session:
            locked = await lock_knowledge_base(session, tid, kb.id, model, dim)
            await remove_document_chunks(session, tid, locked, doc)
            await session.execute(_DELETE_DOCUMENT, {"d": doc})
        deletes.append((time.perf_counter() - started) * 1000)
    return {
        "insert_p50": round(statistics.median(inserts), 1),
        "replace_p50": round(statistics.median(replaces), 1),
        "delete_p50": round(statistics.median(deletes), 1),
    }


async def _document(session: Any, tid: uuid.UUID, kb: KnowledgeBase, doc: uuid.UUID, n: int) -> None:
    await session.execute(
        text(
            "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, chunk_count, "
            "size_bytes) VALUES (:d, :t, :k, 'write', 'text/plain', :h, 10, 1000)"
        ),
        {"d": doc, "t": tid, "k": kb.id, "h": f"write-{doc}-{n}"},
    )


_DELETE_DOCUMENT = text("DELETE FROM documents WHERE id = :d")


async def bulk_delete(data_dir: Path, documents: int) -> dict[str, Any]:
    """Delete `documents` documents of the big tenant one by one (as the API does), then VACUUM the chunks
    (pgvector repairs the HNSW graph there), with hybrid queries running throughout: their latency shows
    whether the deletion stalls the tenant. Changes the loaded data: run it last."""
    from ragapi.ingestion.documents import delete_document

    meta = json.loads(await asyncio.to_thread((data_dir / "scale.json").read_text))
    settings = settings_for(data_dir)
    state = await AppState.start(settings)
    try:
        big = uuid.UUID(meta["big"])
        async with state.db.tenant_session(big) as session:
            kb = await knowledge_bases.get(session, big)
            ids = (await session.execute(_SOME_DOCUMENTS, {"t": big, "n": documents})).scalars().all()
        assert kb is not None
        search = HybridSearch(state.db, state.embeddings, settings, state.indexes)
        queries = meta["queries"][str(big)]
        latencies: dict[str, list[float]] = {"delete": [], "vacuum": []}
        phase = ["delete"]
        done = asyncio.Event()

        async def query_loop() -> None:
            n = 0
            while not done.is_set():
                q = queries[n % len(queries)]
                embedded = EmbeddedQuery(q["vector"], 0.0)
                latencies[phase[0]].append(
                    await timed(lambda q=q, e=embedded: search.search(big, q["text"], 10, {}, kbs=[kb], embedded=e))
                )
                n += 1

        loop = asyncio.create_task(query_loop())
        started = time.perf_counter()
        for doc in ids:
            await delete_document(state.db, big, doc, state.indexes)
        delete_s = time.perf_counter() - started
        phase[0] = "vacuum"
        conn = await asyncpg.connect(state.db.url)
        try:
            started = time.perf_counter()
            await conn.execute("VACUUM chunks")
            vacuum_s = time.perf_counter() - started
        finally:
            await conn.close()
        done.set()
        await loop
        return {
            "chunks": meta["chunks"],
            "deleted_documents": len(ids),
            "delete_documents_per_s": round(len(ids) / delete_s, 1),
            "vacuum_s": round(vacuum_s, 1),
            "hybrid_ms_while_deleting": summary(latencies["delete"]),
            "hybrid_ms_while_vacuuming": summary(latencies["vacuum"]) if latencies["vacuum"] else None,
            "load": os.getloadavg(),
        }
    finally:
        await state.stop()


_SOME_DOCUMENTS = text("SELECT id FROM documents WHERE tenant_id = :t ORDER BY id LIMIT :n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, help="where the loaded database lives (reused when loaded)")
    parser.add_argument(
        "--base", default=str(SCIFACT) if SCIFACT.exists() else "docs", help="a BEIR corpus.jsonl, or docs"
    )
    parser.add_argument("--base-count", type=int, default=3_000, help="real texts embedded for the vectors")
    parser.add_argument("--queries", type=int, default=QUERIES, help="queries measured (of the 200 made)")
    parser.add_argument("--writes", type=int, default=20, help="documents written, replaced and deleted")
    parser.add_argument("--bulk-delete", type=int, default=0, help="delete this many documents (changes the data)")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--exact", action="store_true", help="today's design: BM25 by an exact scan")
    parser.add_argument("--pg-defaults", action="store_true", help="PostgreSQL's default memory settings")
    args = parser.parse_args()
    data_dir: Path = args.data_dir or Path(tempfile.gettempdir()) / f"ragapi-scale-{args.chunks}"
    if not args.measure_only and not (data_dir / "scale.json").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        base = None if args.base == "docs" else Path(args.base)
        asyncio.run(load(data_dir, args.chunks, base, args.base_count))
    if args.bulk_delete:
        print(json.dumps(asyncio.run(bulk_delete(data_dir, args.bulk_delete))), flush=True)  # noqa: T201
        return
    if not args.load_only:
        report = asyncio.run(measure(data_dir, args.exact, args.pg_defaults, args.queries, args.writes))
        print(json.dumps(report), flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
