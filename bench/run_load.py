"""One command for the load test: LLM latency model, `ragapi serve`, seeded tenants, headless locust.

    uv run python bench/run_load.py [--users 100] [--duration 180] [--tenants 3] [--docs 300]

Corpus: SciFact abstracts from ../shared/eval/scifact-train (each tenant gets its own slice of
`--docs` documents; the questions are SciFact's claims). The service runs with its offline default
(embedded PostgreSQL, ONNX embeddings, in-process cache and limits) plus generation through
OPENAI_BASE_URL pointed at bench/llm_server.py (0.8 s to the first token, 50 tokens/s, 60 tokens). The
model stands for a remote API: it runs at nice 10 so that its own CPU, an artefact of sharing this
machine, does not compete with the service under test (its timing is sleeps, which nice does not stretch).
Writes bench/results/load_*.csv, load.html and load-summary.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "eval" / "scifact-train"
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def rss_kib(pid: int) -> dict[str, Any]:
    """VmRSS and VmHWM of the server and its worker processes, summed."""
    fields: dict[str, Any] = {"VmRSS": 0, "VmHWM": 0}
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in fields:
                fields[key] += int(value.split()[0])
    fields["processes"] = len(pids)
    return fields


def cpu_seconds(name_filter: str | None = None, pids: list[int] | None = None) -> float:
    """utime + stime of the given processes (and their children), or of every process whose command
    line contains `name_filter`."""
    tick = os.sysconf("SC_CLK_TCK")
    chosen: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(stat[1])
        if (name_filter and name_filter in cmd) or (pids and (pid in pids or ppid in pids)):
            chosen.add(pid)
    total = 0.0
    for pid in chosen:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / tick
    return total


def inline_lengths(base: str, scrapes: int = 8) -> list[int]:
    """The longest query the API's workers embed on their event loops (QUERY_EMBEDDING_INLINE_MS as timed
    by each): without PROMETHEUS_MULTIPROC_DIR a scrape sees the worker that took it, so take several."""
    seen: set[int] = set()
    for _ in range(scrapes):
        text = httpx.get(base + "/metrics", timeout=10).text
        seen.update(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                    if line.startswith("rag_query_embedding_inline_tokens"))  # fmt: skip
    return sorted(seen)


def seed(base: str, env: dict[str, str], folder: Path, tenants: int, docs: int) -> dict[str, Any]:
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines() if line.strip()]
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").read_text().splitlines() if line]
    out: dict[str, Any] = {"tenants": [], "words": " ".join(d["text"] for d in corpus[:50]).split()}
    with httpx.Client(base_url=base, timeout=300) as http:
        for n in range(tenants):
            created = json.loads(
                subprocess.run(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "ragapi.api.cli", "tenants", "create", f"load-{n}", "--json"],
                    env=env,
                    capture_output=True,
                    check=True,
                    cwd=ROOT,
                ).stdout  # fmt: skip
            )
            admin = {"X-API-Key": created["api_key"]}
            key = http.post("/v1/api-keys", headers=admin, json={"name": "load", "scopes": ["ingest", "feedback"]})
            key.raise_for_status()
            mine = corpus[n * docs : (n + 1) * docs]
            for start in range(0, len(mine), 50):
                batch = [{"text": d["text"], "title": d.get("title") or d["_id"]} for d in mine[start : start + 50]]
                http.post("/v1/ingest?wait=true", headers=admin, json={"documents": batch}).raise_for_status()
            questions = queries[n * 200 : (n + 1) * 200]
            out["tenants"].append(
                {"key": key.json()["api_key"], "admin_key": created["api_key"], "questions": questions}
            )
    return out


def summarise(stats_csv: Path, args: argparse.Namespace, memory: dict[str, Any]) -> str:
    rows = list(csv.DictReader(stats_csv.open()))
    counts = {r["Name"]: int(r["Request Count"]) for r in rows}
    hits = sum(n for name, n in counts.items() if name in ("query (exact)", "query (semantic)"))
    asked = sum(n for name, n in counts.items() if name.startswith("query (") and "sse" not in name)
    lines = [
        f"Load test: {args.users} users, {args.duration} s, {args.tenants} tenants x {args.docs} SciFact abstracts, "
        f"think time 1-5 s, LLM modelled at {args.ttft} s TTFT and {args.tps} tokens/s (nice {args.llm_nice}); "
        f"{os.cpu_count()} cores, "
        f"{args.workers} uvicorn workers, EMBEDDING_THREADS={args.embedding_threads}; queries embedded on the "
        f"event loop up to {memory.get('inline')} word pieces (rag_query_embedding_inline_tokens).",
        "",
        "| request | count | failures | p50 ms | p95 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['Name']} | {r['Request Count']} | {r['Failure Count']} | {r['50%']} | {r['95%']} | {r['99%']} "
        f"| {float(r['Requests/s']):.1f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Cache hit rate over JSON queries: {hits / asked:.0%} ({hits} of {asked})." if asked else "",
        f"API memory ({memory.get('processes', 1)} processes): RSS {memory.get('VmRSS', 0) // 1024} MiB, "
        f"sum of peaks {memory.get('VmHWM', 0) // 1024} MiB.",
        "CPU during the run (core-seconds, of "
        f"{args.duration * (os.cpu_count() or 1)} available): "
        + ", ".join(f"{k} {v:.0f}" for k, v in (memory.get("cpu") or {}).items())  # type: ignore[union-attr]
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--duration", type=int, default=180, help="seconds")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--docs", type=int, default=300, help="documents per tenant")
    parser.add_argument("--ttft", type=float, default=0.8)
    parser.add_argument("--tps", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default: one per core)")
    parser.add_argument("--embedding-threads", type=int, default=1, help="ONNX threads per worker (0: all cores)")
    parser.add_argument(
        "--llm-nice", type=int, default=10, help="nice of the LLM model, which stands for a remote API (0: same)"
    )
    parser.add_argument("--beir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    llm_port, api_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    with tempfile.TemporaryDirectory(prefix="ragapi-load-") as tmp:
        env = {
            **os.environ,
            "DATA_DIR": tmp,
            "PORT": str(api_port),
            "LOG_LEVEL": "warning",
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
            "TENANT_RATE_LIMIT_PER_MINUTE": "1000000",
            "PRINCIPAL_RATE_LIMIT_PER_MINUTE": "1000000",
            "MAX_DOCUMENTS_PER_REQUEST": "100",
            "EMBEDDING_THREADS": str(args.embedding_threads),
        }
        llm = subprocess.Popen(  # noqa: S603
            [shutil.which("nice") or "/usr/bin/nice", "-n", str(args.llm_nice), sys.executable, "-m",
             "bench.llm_server", "--port", str(llm_port), "--ttft", str(args.ttft), "--tps", str(args.tps)],
            cwd=ROOT, env=env,
        )  # fmt: skip
        api = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "ragapi.api.cli", "serve", "--workers", str(args.workers)], cwd=ROOT, env=env
        )
        try:
            wait_until(base + "/readyz")
            started = time.perf_counter()
            fixture = seed(base, env, args.beir, args.tenants, args.docs)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201
            fixture_path = Path(tmp) / "fixture.json"
            fixture_path.write_text(json.dumps(fixture))
            probes = {
                "API": lambda: cpu_seconds(pids=[api.pid]),
                "PostgreSQL": lambda: cpu_seconds("postgres: "),
                "LLM model": lambda: cpu_seconds(pids=[llm.pid]),
                # locust has exited when the probes are read again: a waited-for child's usage
                "locust": lambda: sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
            }
            before = {k: probe() for k, probe in probes.items()}
            subprocess.run(  # noqa: S603
                [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
                 "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s", "--host", base,
                 "--csv", str(RESULTS / "load"), "--html", str(RESULTS / "load.html"), "--only-summary"],
                env={**env, "LOAD_FIXTURE": str(fixture_path)}, cwd=ROOT, check=False,
            )  # fmt: skip
            memory = rss_kib(api.pid)
            memory["inline"] = inline_lengths(base)  # type: ignore[assignment]
            used = {k: probe() - before[k] for k, probe in probes.items()}
            memory["cpu"] = used  # type: ignore[assignment]
        finally:
            api.terminate()
            llm.terminate()
            api.wait(timeout=60)
            llm.wait(timeout=60)
    summary = summarise(RESULTS / "load_stats.csv", args, memory)
    (RESULTS / "load-summary.md").write_text(summary)
    print(summary)  # noqa: T201


if __name__ == "__main__":
    main()
