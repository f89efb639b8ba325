"""Answer-cache benchmark: semantic false-hit rate on a labelled paraphrase set, and hit latency.

    uv run python bench/cache_bench.py          # EMBEDDING_INT8_MATMUL=false: exact float32 products

1. For every pair in bench/paraphrases.jsonl (50 same-intent, 50 different-intent, written by us, with
   near-miss negatives such as "...in Germany?" / "...in France?") the cosine similarity of the real
   embeddings and the salient-token guard decide whether the second question would be served the
   first one's answer. Reported per threshold: false-hit rate (different intent served) and hit rate
   (same intent served).
2. Through the real app in-process (embedded PostgreSQL, in-process exact cache): exact and semantic
   hit latency, as the server reports it (`timings_ms.total`) and as the client sees it.
Writes bench/results/cache.json.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from ragapi.answering.semantic_cache import may_share_answer
from ragapi.api.app import create_app
from ragapi.core.settings import Settings
from ragapi.embedding import OnnxMiniLMEmbeddings
from ragapi.evaluation.metrics import percentile
from ragapi.tenants.service import create_tenant

HERE = Path(__file__).parent
THRESHOLDS = [0.85, 0.90, 0.92, 0.95, 0.97]


def load_pairs() -> list[dict[str, object]]:
    return [json.loads(line) for line in (HERE / "paraphrases.jsonl").read_text().splitlines() if line.strip()]


def false_hits(pairs: list[dict[str, object]]) -> list[dict[str, object]]:
    model = OnnxMiniLMEmbeddings(int8_matmul=Settings(_env_file=None).embedding_int8_matmul)  # type: ignore[call-arg]
    a = model.embed_array([str(p["a"]) for p in pairs])
    b = model.embed_array([str(p["b"]) for p in pairs])
    sims = np.sum(a * b, axis=1)
    rows = []
    for threshold in THRESHOLDS:
        for guarded in (False, True):
            served = [
                may_share_answer(str(p["b"]), str(p["a"]), float(s), threshold, 0.02) if guarded else s >= threshold
                for p, s in zip(pairs, sims, strict=True)
            ]
            same = [bool(p["same_intent"]) for p in pairs]
            fp = sum(s and not t for s, t in zip(served, same, strict=True))
            tp = sum(s and t for s, t in zip(served, same, strict=True))
            rows.append(
                {
                    "threshold": threshold,
                    "guards": guarded,
                    "false_hit_rate": round(float(fp) / same.count(False), 3),
                    "hit_rate": round(float(tp) / same.count(True), 3),
                }
            )
    return rows


async def latency(pairs: list[dict[str, object]], rounds: int = 5) -> dict[str, object]:
    same = [p for p in pairs if p["same_intent"]]
    with tempfile.TemporaryDirectory(prefix="ragapi-cache-bench-") as tmp:
        limits = {"tenant_rate_limit_per_minute": 10**6, "principal_rate_limit_per_minute": 10**6}
        app = create_app(Settings(_env_file=None, data_dir=Path(tmp), **limits))  # type: ignore[call-arg]
        async with app.router.lifespan_context(app):
            state = app.state.services
            tenant = await create_tenant(state.db, "cache-bench")
            headers = {"X-API-Key": tenant.api_key}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                docs = [{"text": f"FAQ. {p['a']} The answer is documented in policy {n}."} for n, p in enumerate(same)]
                await client.post("/v1/ingest?wait=true", headers=headers, json={"documents": docs})

                async def ask(query: str) -> tuple[str, float, float]:
                    started = time.perf_counter()
                    response = await client.post("/v1/query", headers=headers, json={"query": query})
                    body = response.json()
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {body}")
                    wall = (time.perf_counter() - started) * 1000
                    await state.answers.cache.drain()
                    return body["cached"], body["timings_ms"]["total"], wall

                misses = [await ask(str(p["a"])) for p in same]
                exact = [await ask(str(p["a"])) for _ in range(rounds) for p in same]
                semantic = []
                for _ in range(rounds):
                    # a semantic hit is kept as an exact one: forget those so every round matches again
                    await state.answers.cache.exact.close()
                    semantic += [await ask(str(p["b"])) for p in same]
    semantic_hits = [r for r in semantic if r[0] == "semantic"]

    def summary(rows: list[tuple[str, float, float]]) -> dict[str, float]:
        server = [r[1] for r in rows]
        wall = [r[2] for r in rows]
        return {
            "n": len(rows),
            "server_p50_ms": round(percentile(server, 50), 2),
            "server_p95_ms": round(percentile(server, 95), 2),
            "client_p50_ms": round(percentile(wall, 50), 2),
            "client_p95_ms": round(percentile(wall, 95), 2),
        }

    return {
        "miss": summary(misses),
        "exact_hit": summary([r for r in exact if r[0] == "exact"]),
        "semantic_hit": summary(semantic_hits),
        "semantic_hit_rate_on_paraphrases": round(len(semantic_hits) / len(semantic), 3),
    }


async def main() -> dict[str, object]:
    pairs = load_pairs()
    return {"pairs": len(pairs), "thresholds": false_hits(pairs), "latency": await latency(pairs)}


if __name__ == "__main__":
    report = asyncio.run(main())
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "cache.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
