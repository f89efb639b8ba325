"""The scale benchmark's smoke run: 10,000 chunks beside four tenants of 2,000, loaded and measured in a
process of its own, as docs/benchmarks.md runs it at 100,000 and 1,000,000."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale_bench.py"


def test_a_10k_run_reports_every_measure(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH), "--chunks", "10000", "--data-dir", str(tmp_path / "scale")]
    command += ["--base", "docs", "--base-count", "150", "--queries", "40", "--writes", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["chunks"] == 10_000 and report["design"] == "term index"
    for stage in ("bm25_ms", "dense_ms", "hybrid_ms", "small_tenant_hybrid_ms"):
        assert 0 < report[stage]["p50"] <= report[stage]["p95"], stage
    assert report["hybrid_qps_16"] > 0
    assert report["top10_overlap"] >= 0.99  # the term index against the exact scan
    assert report["sizes_mb"]["chunks_term_keys"] > 0 and report["sizes_mb"]["chunks_embedding_hnsw_384"] > 0
    assert set(report["write_ms_per_document"]) == {"insert_p50", "replace_p50", "delete_p50"}
    assert report["pg"]["jit"] == "off"
