"""Int8 matrix products for the bundled MiniLM model.

The model file stores its weights as int8 with a per-column scale, but its graph turns them back into
float32 (`Cast`, `Mul`) before every `MatMul`, so onnxruntime multiplies in float32. Rewriting each such
product as onnxruntime's `DynamicQuantizeMatMul` (com.microsoft) multiplies the same int8 weights with
activations quantised to uint8 per call, on the CPU's int8 instructions (AVX-512 VNNI / AVX2): a short
query embeds in about a third of the CPU time, a document chunk in about 0.6 of it. Quantising the
activations moves a vector by a cosine of about 0.005, and cost the hybrid default 0.0025 nDCG@10 on
SciFact (dense retrieval alone 0.0066; docs/benchmarks.md); EMBEDDING_INT8_MATMUL=false keeps the exact
float32 products. Vectors of the two kinds are close enough to share an index, so switching needs no
re-embedding.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # onnx takes ~0.7 s to import: only a process that loads the model pays for it
    import onnx


@lru_cache(maxsize=1)  # a process embeds queries and ingests with the same model: rewrite it once
def int8_matmul_model(path: Path) -> tuple[bytes, int]:
    """The model at `path` with every int8-weight product rewritten, serialised, and how many were."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    nodes: list[onnx.NodeProto] = []
    scales: list[onnx.TensorProto] = []
    for node in graph.node:
        weight = _int8_weight(node, producers, initializers)
        if weight is None:
            nodes.append(node)
            continue
        quantised, scale = weight
        column_scale = numpy_helper.to_array(initializers[scale]).reshape(-1).astype(np.float32)
        if column_scale.shape[0] != initializers[quantised].dims[-1]:
            nodes.append(node)  # not one scale per output column: leave the product as it is
            continue
        scale_1d = f"{scale}__per_column"
        scales.append(numpy_helper.from_array(column_scale, scale_1d))
        nodes.append(
            helper.make_node(
                "DynamicQuantizeMatMul",
                [node.input[0], quantised, scale_1d],
                list(node.output),
                name=f"{node.name}__int8",
                domain="com.microsoft",
            )
        )
    rewritten = sum(1 for n in nodes if n.op_type == "DynamicQuantizeMatMul")
    del graph.node[:]
    graph.node.extend(_live(nodes, {o.name for o in graph.output}))
    # the Cast/Mul chains that fed the rewritten products are gone: without them their float32 weights
    # would be folded into constants at load and kept in memory for nothing
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in [*graph.initializer, *scales] if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model.SerializeToString(), rewritten


def _live(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """The nodes that something still reads from (another node or a graph output), in order."""
    live: list[onnx.NodeProto] = []
    needed = set(outputs)
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(node.input)
    return live[::-1]


def _int8_weight(
    node: onnx.NodeProto, producers: dict[str, onnx.NodeProto], initializers: dict[str, onnx.TensorProto]
) -> tuple[str, str] | None:
    """(int8 initializer, scale initializer) when `node` is MatMul(x, Mul(Cast(int8 W), scale))."""
    from onnx import TensorProto

    if node.op_type != "MatMul":
        return None
    mul = producers.get(node.input[1])
    if mul is None or mul.op_type != "Mul":
        return None
    cast = producers.get(mul.input[0])
    if cast is None or cast.op_type != "Cast" or mul.input[1] not in initializers:
        return None
    weight = initializers.get(cast.input[0])
    if weight is None or weight.data_type != TensorProto.INT8:
        return None
    return weight.name, mul.input[1]
