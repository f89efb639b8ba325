"""The bundled model as the API embeds with it: on the event loop when short, otherwise on query threads,
as many at a time as configured, below the event loop's priority. The real model, no downloads."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from ragapi.core.metrics import QUERY_EMBEDDING_INLINE_TOKENS
from ragapi.embedding import ONNX_DIM, QUERY_THREAD, OnnxMiniLMEmbeddings, embedding_identity


@pytest.fixture(scope="module")
def model() -> OnnxMiniLMEmbeddings:
    m = OnnxMiniLMEmbeddings(batch_size=2)
    m.warm_up()
    return m


def nice_of(tid: int) -> int:
    return int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19: nice


def test_langchain_interface(model: OnnxMiniLMEmbeddings) -> None:
    assert len(model.embed_query("hello")) == ONNX_DIM
    assert model.embed_documents([]) == []
    assert embedding_identity(model) == ("all-MiniLM-L6-v2-int8", ONNX_DIM)


def test_the_same_vectors_as_the_runtime(model: OnnxMiniLMEmbeddings) -> None:
    texts = ["How do I reset my password?", "Quarterly revenue grew by 8%"]
    assert np.array_equal(np.array(model.embed_documents(texts), dtype=np.float32), model.runtime.embed(texts))
    assert model.count_tokens("which gate closes at dusk") == model.runtime.count_tokens("which gate closes at dusk")


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        OnnxMiniLMEmbeddings(concurrency=0)
    with pytest.raises(ValueError, match="inline_ms"):
        OnnxMiniLMEmbeddings(inline_ms=-1)


def test_query_embeddings_run_below_the_event_loop() -> None:
    """aembed_query computes on a thread at QUERY_EMBEDDING_NICE, onnxruntime's pool threads included, while
    the calling (event-loop) thread keeps its priority; the vectors are the ones computed unniced."""
    before = set(os.listdir("/proc/self/task"))
    queries = OnnxMiniLMEmbeddings(threads=2, nice=3)
    queries.warm_up()  # from this thread, as the API's start-up does: the session is built on the niced one
    vector = asyncio.run(queries.aembed_query("which gate closes at dusk"))
    new = set(os.listdir("/proc/self/task")) - before
    assert len([tid for tid in new if nice_of(int(tid)) == 3]) >= 2, "the query thread and onnxruntime's pool"
    assert nice_of(threading.get_native_id()) == 0
    assert vector == OnnxMiniLMEmbeddings(threads=1).embed_query("which gate closes at dusk")


@pytest.mark.parametrize(("int8_matmul", "concurrency"), [(True, 1), (False, 1), (True, 3), (False, 3)])
def test_concurrent_queries_each_get_their_own_vector(int8_matmul: bool, concurrency: int) -> None:
    """Queries waiting together (one ONNX run each with int8 products, shared batches without, on one or
    several threads) get the vector each would get alone, in the order they were asked."""
    model = OnnxMiniLMEmbeddings(threads=1, nice=2, int8_matmul=int8_matmul, concurrency=concurrency)
    questions = [f"which gate closes at {hour} o'clock" for hour in range(12)] + ["short", "x " * 300]

    async def ask_all() -> list[list[float]]:
        return list(await asyncio.gather(*(model.aembed_query(q) for q in questions)))

    together = np.array(asyncio.run(ask_all()))
    alone = model.embed_array(questions)
    assert np.allclose(together, alone, atol=0 if int8_matmul else 1e-4)


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_query_embeddings_run_as_many_at_once_as_configured(monkeypatch: pytest.MonkeyPatch, concurrency: int) -> None:
    """A worker computes QUERY_EMBEDDING_CONCURRENCY query embeddings at the same time, so a query that
    arrives while another is being embedded does not wait for it; never more than that many."""
    model = OnnxMiniLMEmbeddings(threads=1, nice=2, concurrency=concurrency)
    model.warm_up()
    questions = [f"which gate closes at {hour} o'clock" for hour in range(7)]
    original, running, most, started = model.embed_array, [0], [0], [0]
    changed = threading.Condition()

    def held(texts: list[str]) -> np.ndarray:
        with changed:
            running[0] += 1
            started[0] += 1
            most[0] = max(most[0], running[0])
            changed.notify_all()
            # hold each run until as many as allowed overlap (or nothing else is left to start)
            changed.wait_for(lambda: running[0] >= concurrency or started[0] == len(questions), timeout=5)
        try:
            return original(texts)
        finally:
            with changed:
                running[0] -= 1

    monkeypatch.setattr(model, "embed_array", held)

    async def ask_all() -> list[list[float]]:
        return list(await asyncio.gather(*(model.aembed_query(q) for q in questions)))

    vectors = asyncio.run(ask_all())
    assert most[0] == concurrency
    assert np.array_equal(np.array(vectors), original(questions))


def record_threads(monkeypatch: pytest.MonkeyPatch, model: OnnxMiniLMEmbeddings) -> list[str]:
    """The names of the threads each inference of `model` runs on, in order."""
    ran_on: list[str] = []
    runtime = model.runtime
    original = runtime.embed_encodings
    monkeypatch.setattr(
        runtime, "embed_encodings", lambda batch: ran_on.append(threading.current_thread().name) or original(batch)
    )
    return ran_on


@pytest.mark.parametrize("int8_matmul", [True, False])
def test_short_queries_are_embedded_on_the_event_loop(monkeypatch: pytest.MonkeyPatch, int8_matmul: bool) -> None:
    """With int8 products a query of at most `inline_tokens` word pieces is embedded on the loop's own
    thread, with no trip to a query thread; a longer one goes to a query thread, and so does every query
    with float32 products (which batch what waits). Each gets the vector it gets alone."""
    model = OnnxMiniLMEmbeddings(threads=1, nice=2, int8_matmul=int8_matmul, inline_tokens=16)
    model.warm_up()
    short, long = "which gate closes at dusk", "which gate closes at dusk and which opens at dawn " * 2
    assert model.count_tokens(short) <= 16 < model.count_tokens(long)
    ran_on = record_threads(monkeypatch, model)

    async def ask() -> tuple[list[list[float]], str]:
        return [await model.aembed_query(short), await model.aembed_query(long)], threading.current_thread().name

    vectors, loop_thread = asyncio.run(ask())
    first = loop_thread if int8_matmul else QUERY_THREAD
    assert ran_on[0].startswith(first) and ran_on[1].startswith(QUERY_THREAD)
    assert np.allclose(vectors, model.embed_array([short, long]), atol=0 if int8_matmul else 1e-4)


def test_the_inline_limit_is_timed_on_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unless set in word pieces, the longest query embedded on the event loop is what the host embeds
    within QUERY_EMBEDDING_INLINE_MS: a larger budget allows longer queries, one below the model's fixed
    cost none, a budget beyond the longest input all of them; the metric shows what this worker chose,
    and the loop embeds exactly the queries up to it."""

    def limit(ms: float, **options: int) -> int:
        model = OnnxMiniLMEmbeddings(threads=1, nice=2, inline_tokens=None, inline_ms=ms, **options)
        assert model.inline_encoding("any question") is None  # nothing inline before the model is loaded
        model.warm_up()
        assert isinstance(model.inline_tokens, int)
        assert QUERY_EMBEDDING_INLINE_TOKENS._value.get() == model.inline_tokens
        return model.inline_tokens

    assert limit(0) == limit(0.01) == 0
    assert limit(50, max_tokens=48) == 48  # never longer than the model reads (48 word pieces: 2-8 ms)
    OnnxMiniLMEmbeddings(threads=1).warm_up()  # as ingestion builds it: embeds no query, reports nothing
    assert QUERY_EMBEDDING_INLINE_TOKENS._value.get() == 48
    assert 0 < limit(1.5) < limit(6) < 256
    float32 = OnnxMiniLMEmbeddings(inline_tokens=None, inline_ms=6, int8_matmul=False)
    assert float32.inline_tokens == 0  # float32 products batch what waits: never inline

    model = OnnxMiniLMEmbeddings(threads=1, nice=2, inline_tokens=None, inline_ms=3)
    model.warm_up()
    assert isinstance(model.inline_tokens, int)
    fits, over = (" ".join(["gate"] * (model.inline_tokens - 2 + extra)) for extra in (0, 1))  # with [CLS], [SEP]
    assert (model.count_tokens(fits), model.count_tokens(over)) == (model.inline_tokens, model.inline_tokens + 1)
    ran_on = record_threads(monkeypatch, model)

    async def ask() -> str:
        await model.aembed_query(fits)
        await model.aembed_query(over)
        return threading.current_thread().name

    loop_thread = asyncio.run(ask())
    assert ran_on[0] == loop_thread and ran_on[1].startswith(QUERY_THREAD)


def test_a_query_abandoned_while_it_waits_is_not_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that goes away (its request task cancelled) costs no inference if its turn had not come."""
    model = OnnxMiniLMEmbeddings(threads=1, nice=2)
    model.warm_up()
    embedded: list[list[str]] = []
    original = model.embed_array
    monkeypatch.setattr(model, "embed_array", lambda texts: embedded.append(texts) or original(texts))

    async def ask() -> None:
        kept = asyncio.ensure_future(model.aembed_query("kept"))
        abandoned = asyncio.ensure_future(model.aembed_query("abandoned"))
        await asyncio.sleep(0)  # both wait; the first is taken
        abandoned.cancel()
        await asyncio.gather(kept, model.aembed_query("asked later"))  # queued behind the abandoned one

    asyncio.run(ask())
    assert embedded == [["kept"], ["asked later"]]


def test_a_failed_inference_fails_every_query_waiting_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    model = OnnxMiniLMEmbeddings(threads=1, nice=2, int8_matmul=False)
    model.warm_up()

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("inference failed")

    monkeypatch.setattr(model, "embed_array", broken)

    async def ask_all() -> list[object]:
        return list(await asyncio.gather(*(model.aembed_query(q) for q in ("a", "b", "c")), return_exceptions=True))

    assert [str(e) for e in asyncio.run(ask_all())] == ["inference failed"] * 3
