"""Any fastembed model (the optional `fastembed` extra), chosen with EMBEDDING_PROVIDER=fastembed."""

from __future__ import annotations

from typing import Any

from ragapi.embedding.embedder import Embedder


class FastEmbedEmbeddings(Embedder):
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
        self._model_name = model
        self.batch_size = batch_size
        self._model = TextEmbedding(model_name=model, **kwargs)
        self._dimension = len(next(iter(self._model.embed(["dimension probe"]))))

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._model.embed(texts, batch_size=self.batch_size)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in next(iter(self._model.query_embed(text)))]
