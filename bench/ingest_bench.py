"""Ingestion throughput of one large job, and what it does to unrelated queries.

    uv run python bench/ingest_bench.py [--docs 5000] [--clients 2] [--idle-s 30]

`ragapi serve` with the embedded default (its in-process ingestion worker, ONNX embeddings). First a
job of `--docs` SciFact abstracts runs alone (one POST, 202). Then a tenant with 300 abstracts
answers queries from `--clients` closed-loop clients, with the service idle and then while a job of
`--loaded-docs` abstracts runs for a third tenant. The answer cache is off, so every query takes the
full retrieval path. Writes bench/results/ingest-summary.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from run_load import DEFAULT_DIR, RESULTS, cpu_seconds, free_port, rss_kib, wait_until


def load_beir(folder: Path) -> tuple[list[dict[str, str]], list[str]]:
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open()]
    return [{"title": d.get("title", ""), "text": d["text"]} for d in corpus], queries


def tenant(env: dict[str, str], name: str) -> dict[str, str]:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "ragapi.api.cli", "tenants", "create", name, "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    return {"X-API-Key": json.loads(done.stdout)["api_key"]}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def query_loop(
    http: httpx.AsyncClient, headers: dict[str, str], claims: Iterator[str], stop: asyncio.Event
) -> list[float]:
    took: list[float] = []
    while not stop.is_set():
        claim = next(claims)
        start = time.perf_counter()
        response = await http.post("/v1/query", headers=headers, json={"query": claim[:400]})
        response.raise_for_status()
        took.append(time.perf_counter() - start)
    return took


async def measure(
    base: str, headers: dict[str, str], claims: Iterator[str], clients: int, stop: asyncio.Event
) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        runs = await asyncio.gather(*(query_loop(http, headers, claims, stop) for _ in range(clients)))
    return [t for run in runs for t in run]


async def run_job(
    http: httpx.AsyncClient, headers: dict[str, str], documents: list[dict[str, str]], pid: int
) -> dict[str, Any]:
    """POST one job, follow it to the end; its timings, CPU and peak RSS of the server."""
    cpu_before = cpu_seconds(pids=[pid])
    posted = time.perf_counter()
    accepted = await http.post("/v1/ingest", headers=headers, json={"documents": documents})
    accept_ms = (time.perf_counter() - posted) * 1000
    accepted.raise_for_status()
    job_id = accepted.json()["job_id"]
    peak_rss = 0
    while True:
        job = (await http.get(f"/v1/ingest/jobs/{job_id}", headers=headers)).json()
        peak_rss = max(peak_rss, rss_kib(pid)["VmRSS"])
        if job["finished_at"]:
            break
        await asyncio.sleep(0.5)
    seconds = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    return {
        "job": job,
        "accept_ms": accept_ms,
        "seconds": seconds,
        "cpu": cpu_seconds(pids=[pid]) - cpu_before,
        "peak_rss_mib": peak_rss / 1024,
    }


def job_rows(label: str, run: dict[str, Any]) -> list[str]:
    job, seconds = run["job"], run["seconds"]
    progress = job["progress"]
    return [
        f"| {label}: status | {job['status']} ({progress['files_failed']} of {progress['files_total']} failed) |",
        f"| {label}: POST /v1/ingest answered (202) | {run['accept_ms']:.0f} ms |",
        f"| {label}: duration (started → finished) | {seconds:.1f} s |",
        f"| {label}: throughput | {progress['files_total'] / seconds:.1f} documents/s, "
        f"{progress['chunks_done'] / seconds:.1f} chunks/s |",
        f"| {label}: server CPU | {run['cpu']:.0f} s ({run['cpu'] / seconds:.2f} cores) |",
        f"| {label}: server RSS peak | {run['peak_rss_mib']:.0f} MiB |",
    ]


async def bench(base: str, env: dict[str, str], args: argparse.Namespace, pid: int) -> str:
    corpus, questions = load_beir(args.beir)
    claims = itertools.cycle(questions)
    documents = [{"text": d["text"], "title": d["title"]} for d in corpus]
    alone, contended, asking = tenant(env, "bulk"), tenant(env, "bulk-under-load"), tenant(env, "queries")
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        seeded = await http.post("/v1/ingest?wait=true", headers=asking, json={"documents": documents[:300]})
        seeded.raise_for_status()

        # 1. The big job alone: throughput bounded by the embedding model.
        big = await run_job(http, alone, documents[: args.docs], pid)

        # 2. Queries with the service idle.
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(args.idle_s, stop.set)
        idle = await measure(base, asking, claims, args.clients, stop)

        # 3. Queries while another job runs.
        stop = asyncio.Event()
        busy_task = asyncio.create_task(measure(base, asking, claims, args.clients, stop))
        loaded = await run_job(http, contended, documents[: args.loaded_docs], pid)
        stop.set()
        busy = await busy_task
    lines = [
        f"Ingestion on {os.cpu_count()} cores, `ragapi serve` with the embedded default (in-process worker, ONNX "
        f"embeddings, answer cache off); SciFact abstracts; queries from {args.clients} closed-loop clients "
        "to another tenant.",
        "",
        "| measure | value |",
        "|---|---|",
        *job_rows(f"{args.docs}-document job alone", big),
        *job_rows(f"{args.loaded_docs}-document job under query load", loaded),
        f"| queries idle: n, p50, p95 | {len(idle)}, {pct(idle, 0.5):.0f} ms, {pct(idle, 0.95):.0f} ms |",
        f"| queries during the job: n, p50, p95 | {len(busy)}, {pct(busy, 0.5):.0f} ms, {pct(busy, 0.95):.0f} ms |",
        f"| query p95 during / idle | {pct(busy, 0.95) / pct(idle, 0.95):.2f}x |",
        f"| query mean during / idle | {statistics.mean(busy) / statistics.mean(idle):.2f}x |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="Job run alone, for throughput")
    parser.add_argument("--loaded-docs", type=int, default=1000, help="Job run while queries are measured")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--beir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragapi-ingest-bench-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DATA_DIR": tmp,
            "PORT": str(port),
            "LOG_LEVEL": "warning",
            "MAX_DOCUMENTS_PER_REQUEST": str(max(args.docs, 300)),
            "RATE_LIMITS_ENABLED": "false",
            "CACHE_ENABLED": "false",  # every query takes the full retrieval path
        }
        server = subprocess.Popen([sys.executable, "-m", "ragapi.api.cli", "serve"], env=env)  # noqa: S603
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(base + "/readyz")
            summary = asyncio.run(bench(base, env, args, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest-summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
