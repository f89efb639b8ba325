"""Int8 matrix products and fused kernels for the bundled MiniLM model.

The model file stores its weights as int8 with a per-column scale, but its graph turns them back into
float32 (`Cast`, `Mul`) before every `MatMul`, so onnxruntime multiplies in float32. Rewriting each such
product as onnxruntime's `DynamicQuantizeMatMul` (com.microsoft) multiplies the same int8 weights with
activations quantised to uint8 per call, on the CPU's int8 instructions (AVX-512 VNNI / AVX2), for a
fraction of the CPU time per query and per chunk. Quantising the activations moves a vector a little,
and costs retrieval a little quality on SciFact (docs/benchmarks.md has both); EMBEDDING_INT8_MATMUL=false
keeps the exact float32 products. Vectors of the two kinds are close enough to share an index, so switching needs no
re-embedding.

The exported graph then still runs each layer as dozens of small nodes, which took as much of a short
query's time in onnxruntime's profiler as the products. Three fusions into onnxruntime's CPU kernels
(com.microsoft) compute the same thing in a quarter of the nodes, in less time (docs/benchmarks.md):
- each layer's self-attention (three products, head split and merge, scaled scores, mask, softmax) is one
  `QAttention`, which quantises its input once for its three products instead of once per product;
- each GELU (its bias, then five element-wise nodes) is one `BiasGelu`;
- every other product's bias moves into its `DynamicQuantizeMatMul`.
A layer that does not have the expected shape is left as it is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # onnx takes ~0.7 s to import: only a process that loads the model pays for it
    import onnx

# onnxruntime fuses each residual `Add` and its `LayerNormalization` into `SkipLayerNormalization`, whose
# CPU kernel took longer than the two nodes it replaces (docs/benchmarks.md): sessions keep them apart
SLOWER_FUSIONS = ("SkipLayerNormFusion",)


class Int8Model(NamedTuple):
    serialised: bytes
    products: int  # int8-weight products now multiplied in int8
    attention_layers: int  # self-attention blocks fused into one QAttention each
    gelus: int  # GELUs fused with their bias into one BiasGelu each
    biases: int  # biases moved into their DynamicQuantizeMatMul


@lru_cache(maxsize=2)  # a process embeds queries and ingests with the same model: rewrite it once
def int8_matmul_model(path: Path, fused: bool = True) -> Int8Model:
    """The model at `path` with every int8-weight product rewritten and (`fused`) the fusions above."""
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
    initializers.update((s.name, s) for s in scales)
    outputs = {o.name for o in graph.output}
    nodes = _live(nodes, outputs)
    attention = gelus = biases = 0
    masks = [i.name for i in graph.input if i.name == "attention_mask"]
    if fused and masks:
        nodes, attention_weights, attention = _fuse_attention(nodes, initializers, masks[0])
        initializers.update((i.name, i) for i in attention_weights)
        nodes, gelus = _fuse_bias_gelu(_live(nodes, outputs), initializers)
        nodes, biases = _fold_biases(_live(nodes, outputs), initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    # the Cast/Mul chains that fed the rewritten products are gone: without them their float32 weights
    # would be folded into constants at load and kept in memory for nothing
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in initializers.values() if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return Int8Model(model.SerializeToString(), rewritten, attention, gelus, biases)


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


class _Graph:
    """Who produces and who reads each tensor, and the value of constant ones."""

    def __init__(self, nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto]) -> None:
        self.initializers = initializers
        self.producers = {out: node for node in nodes for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in nodes:
            for name in node.input:
                self.consumers[name].append(node)

    def only_reader(self, tensor: str, op_type: str) -> onnx.NodeProto | None:
        readers = self.consumers.get(tensor, [])
        return readers[0] if len(readers) == 1 and readers[0].op_type == op_type else None

    def constant(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        init = self.initializers.get(name)
        return None if init is None else numpy_helper.to_array(init)

    def scalar(self, node: onnx.NodeProto) -> tuple[str, float] | None:
        """(the other input, the constant) of a binary node with one scalar constant input."""
        for i, name in enumerate(node.input):
            value = self.constant(name)
            if value is not None and value.size == 1:
                return node.input[1 - i], float(value.reshape(-1)[0])
        return None

    def bias_of(self, add: onnx.NodeProto | None) -> tuple[str, str] | None:
        """(the other input, the bias) of an `Add` of a 1-D constant."""
        if add is None or add.op_type != "Add":
            return None
        for i, name in enumerate(add.input):
            value = self.constant(name)
            if value is not None and value.ndim == 1:
                return add.input[1 - i], name
        return None


class _Heads(NamedTuple):
    product: onnx.NodeProto  # DynamicQuantizeMatMul
    bias: str
    heads: str  # the (batch, heads, sequence, head size) tensor


def _split_heads(product: onnx.NodeProto, g: _Graph) -> _Heads | None:
    """product → Add(bias) → Reshape → Transpose(0, 2, 1, 3), as a query, key or value."""
    from onnx import helper

    add = g.only_reader(product.output[0], "Add")
    bias = g.bias_of(add)
    reshape = g.only_reader(add.output[0], "Reshape") if add is not None else None
    transpose = g.only_reader(reshape.output[0], "Transpose") if reshape is not None else None
    if bias is None or transpose is None:
        return None
    perm = [list(helper.get_attribute_value(a)) for a in transpose.attribute if a.name == "perm"]
    return _Heads(product, bias[1], transpose.output[0]) if perm == [[0, 2, 1, 3]] else None


def _head_size(heads: _Heads, g: _Graph) -> int | None:
    """The last entry of the shape the query is reshaped to: a constant, or a `Concat` ending in one."""
    add = g.consumers[heads.product.output[0]][0]
    reshape = g.consumers[add.output[0]][0]
    shape = g.constant(reshape.input[1])
    if shape is None:
        concat = g.producers.get(reshape.input[1])
        shape = g.constant(concat.input[-1]) if concat is not None and concat.op_type == "Concat" else None
    return int(shape.reshape(-1)[-1]) if shape is not None and shape.size >= 1 else None


def _attention(products: list[onnx.NodeProto], g: _Graph) -> tuple[_Heads, _Heads, _Heads, str, int] | None:
    """(query, key, value, the merged-heads output, heads) when the three products that read one tensor
    are a standard self-attention: softmax(q·s_q · (k·s_k)ᵀ + mask) · v with s_q·s_k = 1/sqrt(head size),
    heads merged back."""
    split = [_split_heads(p, g) for p in products]
    if any(s is None for s in split):
        return None
    heads = [s for s in split if s is not None]
    query = key = value = None
    context = scores = None
    probabilities = ""
    for h in heads:
        for reader in g.consumers[h.heads]:
            if reader.op_type == "MatMul" and list(reader.input).index(h.heads) == 1:
                merge = g.only_reader(reader.output[0], "Transpose")
                reshape = g.only_reader(merge.output[0], "Reshape") if merge is not None else None
                if reshape is not None:
                    value, context = h, reshape.output[0]
                    probabilities = reader.input[0]
            elif reader.op_type == "Mul":
                matmul = g.only_reader(reader.output[0], "MatMul")
                if matmul is not None and matmul.input[0] == reader.output[0]:
                    query, scores = h, (reader, matmul)
    if query is None or value is None or scores is None or context is None:
        return None
    key = next((h for h in heads if h is not query and h is not value), None)
    key_mul = g.producers.get(scores[1].input[1])
    q_scale, k_scale = g.scalar(scores[0]), g.scalar(key_mul) if key_mul is not None else None
    if key is None or q_scale is None or k_scale is None or not _reaches(probabilities, "Softmax", g, scores[1]):
        return None
    size = _head_size(query, g)
    hidden = g.initializers[query.product.input[1]].dims[-1]
    if size is None or size <= 0 or hidden % size:
        return None
    if not math.isclose(q_scale[1] * k_scale[1], 1 / math.sqrt(size), rel_tol=1e-4):
        return None  # QAttention scales scores by 1/sqrt(head size)
    return query, key, value, context, hidden // size


def _reaches(tensor: str, op_type: str, g: _Graph, origin: onnx.NodeProto, depth: int = 4) -> bool:
    """Whether `tensor` comes from `origin` through a node of `op_type`, within `depth` nodes."""
    frontier, seen_op = [(tensor, False)], False
    for _ in range(depth):
        step: list[tuple[str, bool]] = []
        for name, passed in frontier:
            node = g.producers.get(name)
            if node is None:
                continue
            passed = passed or node.op_type == op_type
            if node is origin:
                seen_op = seen_op or passed
            step.extend((i, passed) for i in node.input)
        frontier = step
    return seen_op


def _fuse_attention(
    nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto], mask: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], int]:
    """Each self-attention block as DynamicQuantizeLinear + QAttention; the old nodes are left dead."""
    from onnx import TensorProto, helper, numpy_helper

    g = _Graph(nodes, initializers)
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in nodes:
        if node.op_type == "DynamicQuantizeMatMul":
            readers[node.input[0]].append(node)
    mask_i32 = f"{mask}__int32"
    fused: dict[str, list[onnx.NodeProto]] = {}  # merged-heads tensor → the nodes that now compute it
    new: list[onnx.TensorProto] = []
    for x, products in readers.items():
        found = _attention(products, g) if len(products) == 3 else None
        if found is None:
            continue
        query, key, value, context, heads = found
        parts = (query, key, value)
        name = f"{context}__attention"
        weight = np.concatenate([g.constant(p.product.input[1]) for p in parts], axis=1)  # type: ignore[misc]
        scale = np.concatenate([g.constant(p.product.input[2]) for p in parts])  # type: ignore[misc]
        bias = np.concatenate([g.constant(p.bias) for p in parts])  # type: ignore[misc]
        new += [
            numpy_helper.from_array(weight, f"{name}.weight"),
            numpy_helper.from_array(scale.astype(np.float32), f"{name}.weight_scale"),
            numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias"),
        ]
        fused[context] = [
            helper.make_node(
                "DynamicQuantizeLinear",
                [x],
                [f"{name}.x", f"{name}.x_scale", f"{name}.x_zero"],
                name=f"{name}.quantise",
            ),
            helper.make_node(
                "QAttention",
                [
                    f"{name}.x",
                    f"{name}.weight",
                    f"{name}.bias",
                    f"{name}.x_scale",
                    f"{name}.weight_scale",
                    mask_i32,
                    f"{name}.x_zero",
                ],
                [context],
                name=name,
                domain="com.microsoft",
                num_heads=heads,
            ),
        ]
    if not fused:
        return nodes, [], 0
    out = [helper.make_node("Cast", [mask], [mask_i32], to=TensorProto.INT32, name=mask_i32)]
    for node in nodes:  # each fused block takes the place of the node that merged its heads
        out.extend(fused.get(node.output[0], [node]) if node.output else [node])
    return out, new, len(fused)


def _fuse_bias_gelu(
    nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto]
) -> tuple[list[onnx.NodeProto], int]:
    """a = x + bias; a · 0.5 · (1 + erf(a / √2))  →  BiasGelu(x, bias)."""
    from onnx import helper

    g = _Graph(nodes, initializers)
    fused: dict[int, onnx.NodeProto] = {}
    for erf in (n for n in nodes if n.op_type == "Erf"):
        div = g.producers.get(erf.input[0])
        divisor = g.scalar(div) if div is not None and div.op_type == "Div" and div.input[1] != div.input[0] else None
        add_one = g.only_reader(erf.output[0], "Add")
        half = g.only_reader(add_one.output[0], "Mul") if add_one is not None else None
        last = g.only_reader(half.output[0], "Mul") if half is not None else None
        if divisor is None or add_one is None or half is None or last is None:
            continue
        a = divisor[0]
        biased = g.bias_of(g.producers.get(a))
        one, halved = g.scalar(add_one), g.scalar(half)
        if (
            biased is None
            or a not in last.input
            or one is None
            or halved is None
            or not math.isclose(divisor[1], math.sqrt(2), rel_tol=1e-5)
            or not math.isclose(one[1], 1.0)
            or not math.isclose(halved[1], 0.5)
        ):
            continue
        fused[id(last)] = helper.make_node(
            "BiasGelu",
            [biased[0], biased[1]],
            list(last.output),
            name=f"{last.name}__bias_gelu",
            domain="com.microsoft",
        )
    return [fused.get(id(n), n) for n in nodes], len(fused)


def _fold_biases(
    nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto]
) -> tuple[list[onnx.NodeProto], int]:
    """DynamicQuantizeMatMul then Add(bias)  →  DynamicQuantizeMatMul with its optional bias input."""
    g = _Graph(nodes, initializers)
    folded: set[int] = set()
    for product in (n for n in nodes if n.op_type == "DynamicQuantizeMatMul" and len(n.input) == 3):
        add = g.only_reader(product.output[0], "Add")
        bias = g.bias_of(add)
        if add is None or bias is None or g.constant(bias[1]).shape[0] != g.initializers[product.input[1]].dims[-1]:  # type: ignore[union-attr]
            continue
        product.input.extend(["", bias[1]])  # no zero point: the weights are symmetric int8
        product.output[0] = add.output[0]
        folded.add(id(add))
    return [n for n in nodes if id(n) not in folded], len(folded)
