"""Which embedder, from settings."""

from __future__ import annotations

import pytest

from ragapi.embedding import ONNX_MODEL_NAME, Embedder, OnnxMiniLMEmbeddings, build_embeddings, embedder_for
from ragapi.embedding.remote import RemoteEmbeddings
from tests.conftest import make_settings


def test_the_default_is_the_bundled_model_as_queries_use_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, query_embedding_nice=4, query_embedding_concurrency=2, embedding_threads=1)
    embeddings = build_embeddings(settings)
    assert isinstance(embeddings, OnnxMiniLMEmbeddings)
    assert (embeddings.concurrency, embeddings.threads, embeddings._executor is not None) == (2, 1, True)


def test_factory_refuses_unknown_onnx_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="fastembed"):
        build_embeddings(make_settings(tmp_path, embedding_model="BAAI/bge-small-en-v1.5"))
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_embeddings(make_settings(tmp_path, embedding_provider="openai"))
    with pytest.raises(ValueError, match="COHERE_API_KEY"):
        build_embeddings(make_settings(tmp_path, embedding_provider="cohere"))


def test_remote_providers_are_built_without_a_request(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Nothing listens at these addresses: building must not call the API (the dimension is asked later)."""
    openai = build_embeddings(
        make_settings(
            tmp_path, embedding_provider="openai", openai_api_key="sk-e", openai_base_url="http://127.0.0.1:9"
        )
    )
    cohere = build_embeddings(
        make_settings(
            tmp_path, embedding_provider="cohere", cohere_api_key="co-e", cohere_base_url="http://127.0.0.1:9"
        )
    )
    assert isinstance(openai, RemoteEmbeddings) and openai.model_name == "text-embedding-3-small"
    assert isinstance(cohere, RemoteEmbeddings) and cohere.model_name == "embed-english-v3.0"


def test_knowledge_bases_on_the_bundled_model_keep_their_embedder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After a switch to a remote model, a knowledge base still indexed with the bundled one gets the
    bundled model built from the query settings, one instance per configuration; unknown models none."""
    from ragapi.core.metrics import QUERY_EMBEDDING_INLINE_TOKENS

    class Remote(Embedder):  # the configured provider's identity; a remote API cannot run here
        model_name, dimension = "text-embedding-3-small", 1536

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("not called")

        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("not called")

    remote = Remote()
    settings = make_settings(tmp_path, query_embedding_concurrency=3, query_embedding_inline_tokens=20)
    bundled = embedder_for(ONNX_MODEL_NAME, remote, settings)
    assert isinstance(bundled, OnnxMiniLMEmbeddings)
    assert (bundled.concurrency, bundled.inline_tokens) == (3, 20)
    bundled.warm_up()  # a length set in word pieces is kept, not timed
    assert bundled.inline_tokens == 20 and QUERY_EMBEDDING_INLINE_TOKENS._value.get() == 20
    assert (
        embedder_for(
            ONNX_MODEL_NAME,
            remote,
            make_settings(tmp_path, query_embedding_concurrency=3, query_embedding_inline_tokens=20),
        )
        is bundled
    )
    other = embedder_for(
        ONNX_MODEL_NAME, remote, make_settings(tmp_path, query_embedding_concurrency=3, query_embedding_inline_tokens=0)
    )
    assert isinstance(other, OnnxMiniLMEmbeddings) and other is not bundled and other.inline_tokens == 0
    assert embedder_for("text-embedding-3-small", remote, settings) is remote
    assert embedder_for("some-other-model", remote, settings) is None
