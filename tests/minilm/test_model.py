"""The real int8 MiniLM model from the installed wheels, no downloads."""

from __future__ import annotations

import numpy as np
import pytest

from ragapi.minilm import ONNX_DIM, MiniLM


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM.load(batch_size=2)


@pytest.fixture(scope="module")
def float32_model() -> MiniLM:
    return MiniLM.load(batch_size=2, int8_matmul=False)


def test_paraphrases_are_closer_than_unrelated_text(model: MiniLM) -> None:
    a, b, c = model.embed(
        ["How do I reset my password?", "Steps to change a forgotten password", "Quarterly revenue grew by 8%"]
    )
    assert a @ b > 0.5 > a @ c
    assert np.allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-4)


TEXTS = ["short", "a much longer sentence about databases and vectors " * 5, "medium length text here"]


def test_length_sorted_batching_keeps_input_order(float32_model: MiniLM) -> None:
    together = float32_model.embed(TEXTS)
    alone = np.stack([float32_model.embed([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)


def test_an_int8_vector_depends_on_its_text_alone(model: MiniLM) -> None:
    """Int8 products quantise a run's activations together: batch-mates must not move a vector."""
    together = model.embed(TEXTS)
    assert np.array_equal(together, np.stack([model.embed([t])[0] for t in TEXTS]))
    assert np.array_equal(together[2], model.embed(["medium length text here", "x " * 200])[0])


def test_int8_products_agree_with_float32(model: MiniLM, float32_model: MiniLM) -> None:
    texts = [*TEXTS, "How do I reset my password?", "Steps to change a forgotten password", "Revenue grew 8%"]
    fast, exact = model.embed(texts), float32_model.embed(texts)
    assert not np.array_equal(fast, exact)  # the int8 path really ran
    assert ((fast * exact).sum(axis=1) > 0.98).all()
    # an int8 query against float32 documents (an index built before the switch) ranks as before
    query, paraphrase, unrelated = fast[3], exact[4], exact[5]
    assert query @ paraphrase > 0.5 > query @ unrelated


def test_long_input_is_truncated_not_rejected(model: MiniLM) -> None:
    long, longer = model.embed(["word " * 1000, "word " * 400])
    assert long.shape == (ONNX_DIM,)
    assert np.allclose(long, longer, atol=1e-5)  # both cut at the model's 256 tokens
    assert model.count_tokens("word " * 1000) == 256


def test_no_texts_no_inference(model: MiniLM) -> None:
    assert model.embed([]).shape == (0, ONNX_DIM)


def test_batches_hold_a_bounded_number_of_padded_tokens(float32_model: MiniLM) -> None:
    """At most `batch_size` texts and `max_batch_tokens` padded tokens a batch, in ascending length."""
    wide = MiniLM(float32_model.session, float32_model.tokenizer, False, batch_size=4, max_batch_tokens=300)
    lengths = [10, 10, 10, 10, 10, 100, 100, 100, 256]
    assert wide._batches(list(range(len(lengths))), lengths) == [[0, 1, 2, 3], [4, 5, 6], [7], [8]]
