"""CPU per embedding for each build of the bundled model: float32 products, int8 products as exported,
int8 products in fused kernels (the default), and the last with onnxruntime's SkipLayerNormalization.

    uv run python bench/embedding_bench.py [--rounds 5] [--calls 200]

One thread per session (as each API worker runs queries), one text per run (as the int8 path does).
Texts: SciFact-style claims as a query (about 20 word pieces) and a 256-word-piece chunk. The builds
take turns within each round, so a slower minute of the machine falls on all of them. Reports the CPU
time per call (p50 / p95 of the rounds' means) and each build's ratio to the default.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ragapi.embedding import MAX_SEQ_TOKENS, minilm_files
from ragapi.evaluation.metrics import percentile
from ragapi.minilm.int8 import SLOWER_FUSIONS, int8_matmul_model

QUERY = "True or false: the risk of breast cancer is lower in women who had their first child early."
CHUNK = " ".join(f"{word}{i}" for i, word in enumerate(["cohort", "patients", "expression", "mortality"] * 80))


def session(model: str | bytes, disabled: tuple[str, ...]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model, sess_options=options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled)
    )


def builds() -> dict[str, Any]:
    path = minilm_files()[0]
    fused = int8_matmul_model(path).serialised
    return {
        "float32 products": session(str(path), SLOWER_FUSIONS),
        "int8 products, graph as exported": session(int8_matmul_model(path, fused=False).serialised, ()),
        "int8 products, fused kernels (default)": session(fused, SLOWER_FUSIONS),
        "int8 products, fused kernels + SkipLayerNormalization": session(fused, ()),
    }


def feed(text: str) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_files()[1]))
    tokenizer.enable_truncation(max_length=MAX_SEQ_TOKENS)
    tokenizer.no_padding()
    ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def cpu_ms_per_call(run: Callable[[], Any], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        run()
    return (time.thread_time() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per build and round (a tenth for chunks)")
    args = parser.parse_args()
    sessions = builds()
    report: dict[str, Any] = {}
    for label, text, calls in (("query", QUERY, args.calls), ("chunk", CHUNK, max(1, args.calls // 10))):
        inputs = feed(text)
        for s in sessions.values():  # warm-up: first runs allocate the arena
            for _ in range(10):
                s.run(None, inputs)
        means: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                means[name].append(cpu_ms_per_call(lambda s=s, i=inputs: s.run(None, i), calls))
        default = percentile(means["int8 products, fused kernels (default)"], 50)
        report[label] = {
            "word_pieces": int(inputs["input_ids"].shape[1]),
            "builds": {
                name: {
                    "cpu_ms_p50": round(percentile(v, 50), 3),
                    "cpu_ms_p95": round(percentile(v, 95), 3),
                    "ratio_to_default": round(percentile(v, 50) / default, 2),
                }
                for name, v in means.items()
            },
        }
    print(json.dumps(report, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
