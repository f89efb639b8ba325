"""The int8 rewriting of the bundled model's graph (`ragapi.minilm.int8`), on the real model file."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ragapi.minilm import minilm_files
from ragapi.minilm.int8 import SLOWER_FUSIONS, int8_matmul_model


def test_every_int8_weight_product_is_rewritten() -> None:
    import onnx

    original = onnx.load(str(minilm_files()[0]))
    rewrite = int8_matmul_model(minilm_files()[0], fused=False)
    ops = Counter(node.op_type for node in onnx.load_from_string(rewrite.serialised).graph.node)
    before = Counter(node.op_type for node in original.graph.node)
    weights = sum(1 for i in original.graph.initializer if i.data_type == onnx.TensorProto.INT8)
    assert rewrite.products == ops["DynamicQuantizeMatMul"] == weights - 2  # all but the two embedding tables
    assert ops["MatMul"] == before["MatMul"] - rewrite.products  # attention's activation products stay float32
    # the casts to float32 that fed them are gone, with nothing else (the embedding tables keep theirs)
    assert (ops["Cast"], ops["Mul"]) == (before["Cast"] - rewrite.products, before["Mul"] - rewrite.products)
    kept = {i.name for i in onnx.load_from_string(rewrite.serialised).graph.initializer}
    assert (
        sum(1 for i in original.graph.initializer if i.name in kept and i.data_type == onnx.TensorProto.INT8) == weights
    )


def _session(model: bytes):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model, sess_options=options, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOWER_FUSIONS)
    )


def test_every_layer_runs_in_fused_kernels() -> None:
    import onnx

    fused = int8_matmul_model(minilm_files()[0])
    ops = Counter(node.op_type for node in onnx.load_from_string(fused.serialised).graph.node)
    # six layers: one QAttention each (3 of the 36 products), one BiasGelu, and the other 18 products
    # with their bias inside
    assert (fused.attention_layers, fused.gelus, fused.biases) == (6, 6, 12)
    assert ops["QAttention"] == 6 and ops["BiasGelu"] == 6 and ops["DynamicQuantizeMatMul"] == 36 - 3 * 6
    assert ops["Softmax"] == ops["Erf"] == ops["Transpose"] == ops["MatMul"] == 0
    assert sum(ops.values()) < 100  # from 313


def test_fused_kernels_compute_what_the_graph_did() -> None:
    """Same vectors as the unfused int8 graph, also when padded: QAttention honours the mask as the graph's
    own attention did (activations are quantised per run, so padding moves an int8 vector either way)."""
    from tokenizers import Tokenizer

    fused = _session(int8_matmul_model(minilm_files()[0]).serialised)
    plain = _session(int8_matmul_model(minilm_files()[0], fused=False).serialised)
    tokenizer = Tokenizer.from_file(str(minilm_files()[1]))
    tokenizer.no_padding()
    texts = ["How do I reset my password?", "Quarterly revenue grew by 8% in the northern region " * 3]

    def pooled(session, ids: list[int], width: int) -> np.ndarray:  # type: ignore[no-untyped-def]
        row = np.zeros((1, width), dtype=np.int64)
        row[0, : len(ids)] = ids
        mask = (row != 0).astype(np.int64)
        hidden = session.run(None, {"input_ids": row, "attention_mask": mask, "token_type_ids": np.zeros_like(row)})
        vector = (hidden[0] * mask[:, :, None]).sum(axis=1)[0] / mask.sum()
        return vector / np.linalg.norm(vector)  # type: ignore[no-any-return]

    for text in texts:
        ids = tokenizer.encode(text).ids
        alone_fused, alone_plain = pooled(fused, ids, len(ids)), pooled(plain, ids, len(ids))
        assert alone_fused @ alone_plain > 0.9999
        padded_fused, padded_plain = pooled(fused, ids, len(ids) + 17), pooled(plain, ids, len(ids) + 17)
        assert padded_fused @ padded_plain > 0.9999
