"""The onnxruntime session that runs the bundled model, on the CPU, with its int8 rewriting (`int8`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragapi.minilm.int8 import SLOWER_FUSIONS, int8_matmul_model

if TYPE_CHECKING:  # imported when the model is loaded, not when the API imports this package
    import onnxruntime as ort


def open_session(model_path: Path, threads: int, int8_matmul: bool) -> ort.InferenceSession:
    """A session for the model at `model_path` on `threads` intra-op threads (0: onnxruntime's choice).

    Linux keeps a nice value per thread: onnxruntime's pool threads, created here, inherit the calling
    thread's, so a caller that wants the inference at a lower priority opens the session on such a thread.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle ONNX threads must sleep, not spin: spinning threads take CPU from the event loops of
    # every worker (measured in the load test, docs/benchmarks.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # the same int8 weights multiplied in int8, in fused kernels (`int8`): a fraction of the CPU per query
    model: str | bytes = int8_matmul_model(model_path).serialised if int8_matmul else str(model_path)
    return ort.InferenceSession(
        model,
        sess_options=options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(SLOWER_FUSIONS),
    )
