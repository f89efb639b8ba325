"""Text embeddings: the bundled model (`ragapi.minilm`) and the providers a deployment may configure instead,
each an `Embedder` (LangChain's `Embeddings` that states its model and dimension). Import from here; the
modules behind it are private:

- `embedder`: the contract (`Embedder`) and `embedding_identity`.
- `bundled`: the bundled model as an API process embeds with it (query threads, inline queries, priority).
- `fastembed`: any fastembed model (optional extra).
- `remote`: OpenAI's and Cohere's embedding APIs.
- `priority`: CPU priority, and the low-priority wrapper ingestion embeds through.
- `factory`: which embedder, from settings.
"""

from ragapi.embedding.bundled import QUERY_THREAD, OnnxMiniLMEmbeddings
from ragapi.embedding.embedder import Embedder, embedding_identity
from ragapi.embedding.factory import build_embeddings, embedder_for, ingestion_embeddings
from ragapi.embedding.priority import LowPriorityEmbeddings
from ragapi.minilm import MAX_SEQ_TOKENS, ONNX_DIM, ONNX_MODEL_NAME, minilm_files

__all__ = [
    "MAX_SEQ_TOKENS",
    "ONNX_DIM",
    "ONNX_MODEL_NAME",
    "QUERY_THREAD",
    "Embedder",
    "LowPriorityEmbeddings",
    "OnnxMiniLMEmbeddings",
    "build_embeddings",
    "embedder_for",
    "embedding_identity",
    "ingestion_embeddings",
    "minilm_files",
]
