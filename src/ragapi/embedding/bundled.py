"""The bundled model (`ragapi.minilm`) as LangChain's `Embeddings`, scheduled for an API process.

Queries are embedded on the event loop when short enough to cost less than a trip to a thread, otherwise
on query threads, a configured number at a time, below the event loops' CPU priority.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from ragapi.core.metrics import QUERY_EMBEDDING_INLINE_TOKENS
from ragapi.embedding.embedder import Embedder
from ragapi.embedding.priority import lower_priority
from ragapi.minilm import MAX_BATCH_TOKENS, MAX_SEQ_TOKENS, ONNX_DIM, ONNX_MODEL_NAME, MiniLM, measure_query_cost

if TYPE_CHECKING:
    from tokenizers import Encoding

QUERY_THREAD = "query-embed"


class OnnxMiniLMEmbeddings(Embedder):
    """Mean-pooled, L2-normalised sentence embeddings from the bundled ONNX model (`ragapi.minilm.MiniLM`).

    The model is loaded lazily (first use or `warm_up`), on a query thread when there are some, and is
    safe to call from several threads.
    """

    model_name = ONNX_MODEL_NAME
    dimension = ONNX_DIM

    def __init__(
        self,
        threads: int = 0,
        batch_size: int = 32,
        max_tokens: int = MAX_SEQ_TOKENS,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
        nice: int = 0,
        int8_matmul: bool = True,
        concurrency: int = 1,
        inline_tokens: int | None = 0,
        inline_ms: float = 0.0,
    ) -> None:
        if batch_size < 1 or concurrency < 1 or (inline_tokens or 0) < 0 or inline_ms < 0:
            raise ValueError("batch_size and concurrency must be >= 1, inline_tokens and inline_ms >= 0")
        # Query embeddings not run inline run on `concurrency` threads at `nice` (Linux keeps a nice value
        # per thread, and onnxruntime's pool threads, created with the session on that thread, inherit
        # it): on contested cores the event loops and PostgreSQL, which every request waits for, run first.
        self.concurrency = concurrency
        # None: the longest query whose embedding fits in `inline_ms`, timed at warm-up (`_inline_limit`).
        # Float32 products never run inline: they batch what waits.
        self.inline_tokens = inline_tokens if int8_matmul else 0
        self.inline_ms = inline_ms
        self._executor = (
            ThreadPoolExecutor(concurrency, QUERY_THREAD, initializer=lower_priority, initargs=(nice,))
            if nice
            else None
        )
        self.threads = threads
        self.int8_matmul = int8_matmul
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_tokens = max_tokens
        self._model: MiniLM | None = None
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._drains: set[asyncio.Task[None]] = set()

    def warm_up(self) -> None:
        self._load()

    @property
    def runtime(self) -> MiniLM:
        """The loaded model (loaded first if need be, as `warm_up` does)."""
        return self._load()

    def _load(self) -> MiniLM:
        model = self._model
        if model is not None:
            return model
        if self._executor is not None and not threading.current_thread().name.startswith(QUERY_THREAD):
            return self._executor.submit(self._load).result()  # its pool threads inherit the query threads' nice
        with self._lock:
            if self._model is not None:
                return self._model
            model = self._model = MiniLM.load(
                threads=self.threads,
                int8_matmul=self.int8_matmul,
                batch_size=self.batch_size,
                max_tokens=self.max_tokens,
                max_batch_tokens=self.max_batch_tokens,
            )
            if self.inline_tokens == 0:  # ingestion's instances, or none inline: nothing to report
                return model
            if self.inline_tokens is None:
                self.inline_tokens = self._inline_limit(model)
            QUERY_EMBEDDING_INLINE_TOKENS.set(self.inline_tokens)
            return model

    def _inline_limit(self, model: MiniLM) -> int:
        """The most word pieces a query may have to be embedded within `inline_ms` on this host.

        The model's cost grows about linearly with a query's length: `measure_query_cost` times two lengths
        as the event loop runs them (tokenising, inference, pooling) and gives the line.
        """
        if self.inline_ms <= 0:
            return 0
        return min(self.max_tokens, measure_query_cost(model).tokens_within(self.inline_ms / 1000))

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text` (after truncation): the embedding's token usage."""
        return self.runtime.count_tokens(text)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return self.runtime.embed(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """A short query with int8 products is embedded right here (`inline_encoding`). Other queries
        share `concurrency` inferences at a time on threads; whatever arrives while all are running waits
        for the next free one. With float32 products a free inference takes everything waiting as one
        batch, turning many small inferences (each contending for the same cores) into a few batched ones;
        with int8 products each text runs alone, in arrival order."""
        encoding = self.inline_encoding(text)
        if encoding is not None:
            return self.runtime.embed_encodings([encoding])[0].tolist()  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[float]] = loop.create_future()
        self._waiting.append((text, future))
        self._drains = {d for d in self._drains if not d.done() and d.get_loop() is loop}
        if len(self._drains) < self.concurrency:
            self._drains.add(loop.create_task(self._drain_waiting()))
        return await future

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Texts a request embeds (the extractive answerer's candidate sentences) run where its queries do:
        on the query threads, at their priority, not on the loop's default executor."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.embed_documents, texts)

    def inline_encoding(self, text: str) -> Encoding | None:
        """The encoding of a query to embed on the calling thread (the event loop), or None for a thread.

        With int8 products a query whose embedding takes at most QUERY_EMBEDDING_INLINE_MS (its length in
        word pieces differs several times between hosts) costs less than the trip to a thread and back
        costs under load: the thread waits for a core at its lower priority, takes the GIL back twice, and
        the result waits for two turns of the loop (the load test measured both, docs/benchmarks.md). A
        budget in time rather than in word pieces holds the loop as long on
        any host. Longer queries, and float32 products, which batch what waits, go to the threads; so
        does everything before the model is loaded.
        """
        model = self._model
        if not self.inline_tokens or model is None:
            return None
        encoding = model.encode(text)
        return encoding if len(encoding.ids) <= self.inline_tokens else None

    async def _drain_waiting(self) -> None:
        # with int8 products texts run one at a time anyway: hand each query its vector when it is ready
        step = 1 if self.int8_matmul else self.batch_size
        while self._waiting:
            batch, self._waiting = self._waiting[:step], self._waiting[step:]
            batch = [(text, future) for text, future in batch if not future.done()]  # drop cancelled waiters
            if not batch:
                continue
            try:
                texts = [text for text, _ in batch]  # on the niced threads, or the loop's default executor
                vectors = await asyncio.get_running_loop().run_in_executor(self._executor, self.embed_array, texts)
            except Exception as exc:  # every waiter gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector.tolist())
