"""CPU priority for embedding threads: query work first, ingestion with what is left."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ragapi.embedding.embedder import Embedder


def lower_priority(nice: int) -> None:
    """Run the calling thread at `nice` (a `ThreadPoolExecutor` initializer)."""
    # Linux: PRIO_PROCESS with who=0 sets the calling thread's nice value, which threads it starts inherit.
    os.setpriority(os.PRIO_PROCESS, 0, nice)


class LowPriorityEmbeddings(Embedder):
    """Bulk embedding (ingestion) at a lower CPU priority than queries embedded in the same process.

    Linux keeps a nice value per thread, inherited by the threads it creates. The wrapped model is
    built and run on one niced thread, so onnxruntime's pool threads (created with its session) are
    niced too: on a contested core the scheduler runs query work first, and ingestion takes the rest.
    """

    def __init__(self, build: Callable[[], Embedder], nice: int) -> None:
        self._executor = ThreadPoolExecutor(1, "ingest-embed", initializer=lower_priority, initargs=(nice,))
        self.inner = self._executor.submit(build).result()
        self._executor.submit(self.inner.warm_up).result()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._executor.submit(self.inner.embed_documents, texts).result()

    def embed_query(self, text: str) -> list[float]:
        return self._executor.submit(self.inner.embed_query, text).result()
