"""An embedder's identity: stated by every `Embedder`, asked of a LangChain client handed in as it is."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import Embeddings

from ragapi.embedding import Embedder, embedding_identity


class Counting(Embeddings):
    """A LangChain client built outside `ragapi.embedding`: it names its model, not its dimension."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return [0.0, 1.0, 0.0]


def test_an_embedder_states_its_identity() -> None:
    class Stated(Embedder):
        model_name, dimension = "stated", 7

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("not called")

        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("not called")

    assert embedding_identity(Stated()) == ("stated", 7)
    Stated().warm_up()  # nothing to load


def test_an_embedder_must_state_both() -> None:
    class Unnamed(Embedder):
        dimension = 7

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("not called")

        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("not called")

    with pytest.raises(TypeError, match="model_name"):
        Unnamed()  # type: ignore[abstract]


def test_a_client_handed_in_is_named_by_its_model_and_probed_once() -> None:
    client = Counting("some-model")
    assert embedding_identity(client) == embedding_identity(client) == ("some-model", 3)
    assert client.calls == 1
    with pytest.raises(ValueError, match="does not name its model"):
        embedding_identity(Counting(None))
