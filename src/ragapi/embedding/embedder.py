"""The contract every embedder meets (`Embedder`), and the identity it states (`embedding_identity`).

Each knowledge base records the model and dimension its vectors were made with, so that a change of model
is detected (and re-embedding can start) rather than mixing vectors from two models; the query log and
the answer caches name the model too. An embedder therefore says which model it runs and how long its
vectors are, instead of being guessed from whichever attributes its class happens to have.
"""

from __future__ import annotations

from abc import abstractmethod

from langchain_core.embeddings import Embeddings


class Embedder(Embeddings):
    """LangChain's `Embeddings` that names its model and the length of its vectors.

    Implementations state each as a class attribute (a fixed model) or a property (one chosen on
    construction; a remote model's dimension, asked for on first need).
    """

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name, recorded with every vector it makes."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """The length of its vectors."""

    # not abstract: most embedders have nothing to load
    def warm_up(self) -> None:
        """Load what the first call would otherwise load, so that no request waits for it."""


_PROBED_DIMENSIONS: dict[int, int] = {}


def embedding_identity(embeddings: Embeddings) -> tuple[str, int]:
    """(model name, dimension) recorded per knowledge base so a model change is detected.

    Every embedder built here is an `Embedder` and states both. A LangChain client handed in as it is
    (tests pass `OpenAIEmbeddings` directly) is named by its `model_name` or `model`, and, as it does not
    state its dimension, probed once per process.
    """
    if isinstance(embeddings, Embedder):
        return embeddings.model_name, embeddings.dimension
    name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
    if not name:
        raise ValueError(f"{type(embeddings).__name__} does not name its model")
    dim = getattr(embeddings, "dimension", None) or _PROBED_DIMENSIONS.get(id(embeddings))
    if not dim:
        dim = _PROBED_DIMENSIONS[id(embeddings)] = len(embeddings.embed_query("dimension probe"))
    return str(name), int(dim)
