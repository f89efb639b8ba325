"""The real int8 MiniLM model from the installed wheels, no downloads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from chains.embeddings import ONNX_DIM, OnnxMiniLMEmbeddings, build_embeddings, embedding_identity, minilm_files
from core.metrics import QUERY_EMBEDDING_INLINE_TOKENS
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def model() -> OnnxMiniLMEmbeddings:
    m = OnnxMiniLMEmbeddings(batch_size=2)
    m.warm_up()
    return m


def test_paraphrases_are_closer_than_unrelated_text(model: OnnxMiniLMEmbeddings) -> None:
    a, b, c = model.embed_array(
        ["How do I reset my password?", "Steps to change a forgotten password", "Quarterly revenue grew by 8%"]
    )
    assert a @ b > 0.5 > a @ c
    assert np.allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-4)


@pytest.fixture(scope="module")
def float32_model() -> OnnxMiniLMEmbeddings:
    m = OnnxMiniLMEmbeddings(batch_size=2, int8_matmul=False)
    m.warm_up()
    return m


TEXTS = ["short", "a much longer sentence about databases and vectors " * 5, "medium length text here"]


def test_length_sorted_batching_keeps_input_order(float32_model: OnnxMiniLMEmbeddings) -> None:
    together = float32_model.embed_array(TEXTS)
    alone = np.stack([float32_model.embed_array([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)


def test_an_int8_vector_depends_on_its_text_alone(model: OnnxMiniLMEmbeddings) -> None:
    """Int8 products quantise a run's activations together: batch-mates must not move a vector."""
    together = model.embed_array(TEXTS)
    assert np.array_equal(together, np.stack([model.embed_array([t])[0] for t in TEXTS]))
    assert np.array_equal(together[2], model.embed_array(["medium length text here", "x " * 200])[0])


def test_int8_products_agree_with_float32(model: OnnxMiniLMEmbeddings, float32_model: OnnxMiniLMEmbeddings) -> None:
    texts = [*TEXTS, "How do I reset my password?", "Steps to change a forgotten password", "Revenue grew 8%"]
    fast, exact = model.embed_array(texts), float32_model.embed_array(texts)
    assert not np.array_equal(fast, exact)  # the int8 path really ran
    assert ((fast * exact).sum(axis=1) > 0.98).all()
    # an int8 query against float32 documents (an index built before the switch) ranks as before
    query, paraphrase, unrelated = fast[3], exact[4], exact[5]
    assert query @ paraphrase > 0.5 > query @ unrelated


def test_every_int8_weight_product_is_rewritten() -> None:
    import onnx

    from chains.onnx_int8 import int8_matmul_model

    original = onnx.load(str(minilm_files()[0]))
    rewrite = int8_matmul_model(minilm_files()[0], fused=False)
    ops = Counter(node.op_type for node in onnx.load_from_string(rewrite.serialised).graph.node)
    before = Counter(node.op_type for node in original.graph.node)
    weights = sum(1 for i in original.graph.initializer if i.data_type == onnx.TensorProto.INT8)
    assert rewrite.products == ops["DynamicQuantizeMatMul"] == weights - 2  # all but the two embedding tables
    assert ops["MatMul"] == before["MatMul"] - rewrite.products  # attention's activation products stay float32
    # the casts to float32 that fed them are gone, with nothing else (the embedding tables keep theirs)
    assert (ops["Cast"], ops["Mul"]) == (before["Cast"] - rewrite.products, before["Mul"] - rewrite.products)
    kept = {i.name for i in onnx.load_from_string(rewrite.serialised).graph.initializer}
    assert (
        sum(1 for i in original.graph.initializer if i.name in kept and i.data_type == onnx.TensorProto.INT8) == weights
    )


def _session(model: bytes):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from chains.onnx_int8 import SLOWER_FUSIONS

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model, sess_options=options, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOWER_FUSIONS)
    )


def test_every_layer_runs_in_fused_kernels() -> None:
    import onnx

    from chains.onnx_int8 import int8_matmul_model

    fused = int8_matmul_model(minilm_files()[0])
    ops = Counter(node.op_type for node in onnx.load_from_string(fused.serialised).graph.node)
    # six layers: one QAttention each (3 of the 36 products), one BiasGelu, and the other 18 products
    # with their bias inside
    assert (fused.attention_layers, fused.gelus, fused.biases) == (6, 6, 12)
    assert ops["QAttention"] == 6 and ops["BiasGelu"] == 6 and ops["DynamicQuantizeMatMul"] == 36 - 3 * 6
    assert ops["Softmax"] == ops["Erf"] == ops["Transpose"] == ops["MatMul"] == 0
    assert sum(ops.values()) < 100  # from 313


def test_fused_kernels_compute_what_the_graph_did() -> None:
    """Same vectors as the unfused int8 graph, also when padded: QAttention honours the mask as the graph's
    own attention did (activations are quantised per run, so padding moves an int8 vector either way)."""
    from tokenizers import Tokenizer

    from chains.onnx_int8 import int8_matmul_model

    fused = _session(int8_matmul_model(minilm_files()[0]).serialised)
    plain = _session(int8_matmul_model(minilm_files()[0], fused=False).serialised)
    tokenizer = Tokenizer.from_file(str(minilm_files()[1]))
    tokenizer.no_padding()
    texts = ["How do I reset my password?", "Quarterly revenue grew by 8% in the northern region " * 3]

    def pooled(session, ids: list[int], width: int) -> np.ndarray:  # type: ignore[no-untyped-def]
        row = np.zeros((1, width), dtype=np.int64)
        row[0, : len(ids)] = ids
        mask = (row != 0).astype(np.int64)
        hidden = session.run(None, {"input_ids": row, "attention_mask": mask, "token_type_ids": np.zeros_like(row)})
        vector = (hidden[0] * mask[:, :, None]).sum(axis=1)[0] / mask.sum()
        return vector / np.linalg.norm(vector)  # type: ignore[no-any-return]

    for text in texts:
        ids = tokenizer.encode(text).ids
        alone_fused, alone_plain = pooled(fused, ids, len(ids)), pooled(plain, ids, len(ids))
        assert alone_fused @ alone_plain > 0.9999
        padded_fused, padded_plain = pooled(fused, ids, len(ids) + 17), pooled(plain, ids, len(ids) + 17)
        assert padded_fused @ padded_plain > 0.9999


def test_langchain_interface(model: OnnxMiniLMEmbeddings) -> None:
    assert len(model.embed_query("hello")) == ONNX_DIM
    assert model.embed_documents([]) == []
    assert embedding_identity(model) == ("all-MiniLM-L6-v2-int8", ONNX_DIM)


def test_long_input_is_truncated_not_rejected(model: OnnxMiniLMEmbeddings) -> None:
    long, longer = model.embed_array(["word " * 1000, "word " * 400])
    assert long.shape == (ONNX_DIM,)
    assert np.allclose(long, longer, atol=1e-5)  # both cut at the model's 256 tokens


def test_factory_refuses_unknown_onnx_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="fastembed"):
        build_embeddings(make_settings(tmp_path, embedding_model="BAAI/bge-small-en-v1.5"))
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_embeddings(make_settings(tmp_path, embedding_provider="openai"))


def test_knowledge_bases_on_the_bundled_model_keep_their_embedder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After a switch to a remote model, a knowledge base still indexed with the bundled one gets the
    bundled model built from the query settings, one instance per configuration; unknown models none."""
    from langchain_core.embeddings import Embeddings

    from chains.embeddings import ONNX_MODEL_NAME, embedder_for

    class Remote(Embeddings):  # the configured provider's identity; a remote API cannot run here
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


def test_openai_embeddings_on_the_wire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64

    from tests.wire import Recorded, Reply, wire_server

    def respond(request: Recorded) -> Reply:
        vectors = [[float(i), 0.5, -1.0] for i, _ in enumerate(request.body["input"])]
        encoded = request.body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(np.asarray(v, dtype=np.float32).tobytes()).decode() if encoded else v,
            }
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 4, "total_tokens": 4}
        return Reply(body={"object": "list", "data": data, "model": request.body["model"], "usage": usage})

    with wire_server(respond) as server:
        settings = make_settings(
            tmp_path, embedding_provider="openai", openai_api_key="sk-e", openai_base_url=server.url + "/v1"
        )
        embeddings = build_embeddings(settings)
        vectors = embeddings.embed_documents(["first text", "second text"])
        assert embedding_identity(embeddings) == ("text-embedding-3-small", 3)
    assert vectors == [[0.0, 0.5, -1.0], [1.0, 0.5, -1.0]]
    request = server.requests[0]
    assert request.path == "/v1/embeddings" and request.headers["authorization"] == "Bearer sk-e"
    assert request.body["input"] == ["first text", "second text"] and request.body["model"] == "text-embedding-3-small"


def test_ingestion_embeds_at_lower_cpu_priority_than_queries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every thread that computes ingestion embeddings (the caller and onnxruntime's pool) runs at
    INGEST_NICE; this thread, which embeds queries, keeps its priority; the vectors are the same."""
    import os
    import threading

    from chains.embeddings import LowPriorityEmbeddings, OnnxMiniLMEmbeddings, ingestion_embeddings

    def nice_of(tid: int) -> int:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[16])  # field 19 of stat: nice

    before = set(os.listdir("/proc/self/task"))
    queries = OnnxMiniLMEmbeddings(threads=2)
    ingest = ingestion_embeddings(make_settings(tmp_path, ingest_nice=7, embedding_threads=2), queries)
    assert isinstance(ingest, LowPriorityEmbeddings)
    assert ingest.embed_documents(["the same text"]) == queries.embed_documents(["the same text"])
    new = set(os.listdir("/proc/self/task")) - before
    niced = [tid for tid in new if nice_of(int(tid)) == 7]
    assert len(niced) >= 2, "the embedding thread and onnxruntime's pool thread(s)"
    assert nice_of(threading.get_native_id()) == 0
    assert embedding_identity(ingest) == embedding_identity(queries)
    assert ingestion_embeddings(make_settings(tmp_path, ingest_nice=0), queries) is queries


def test_query_embeddings_run_below_the_event_loop() -> None:
    """aembed_query computes on a thread at QUERY_EMBEDDING_NICE, onnxruntime's pool threads included, while
    the calling (event-loop) thread keeps its priority; the vectors are the ones computed unniced."""
    import asyncio
    import os
    import threading

    from chains.embeddings import OnnxMiniLMEmbeddings

    def nice_of(tid: int) -> int:
        return int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])

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
    import asyncio

    from chains.embeddings import OnnxMiniLMEmbeddings

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
    import asyncio
    import threading

    from chains.embeddings import OnnxMiniLMEmbeddings

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


@pytest.mark.parametrize("int8_matmul", [True, False])
def test_short_queries_are_embedded_on_the_event_loop(monkeypatch: pytest.MonkeyPatch, int8_matmul: bool) -> None:
    """With int8 products a query of at most `inline_tokens` word pieces is embedded on the loop's own
    thread, with no trip to a query thread; a longer one goes to a query thread, and so does every query
    with float32 products (which batch what waits). Each gets the vector it gets alone."""
    import asyncio
    import threading

    from chains.embeddings import QUERY_THREAD, OnnxMiniLMEmbeddings

    model = OnnxMiniLMEmbeddings(threads=1, nice=2, int8_matmul=int8_matmul, inline_tokens=16)
    model.warm_up()
    short, long = "which gate closes at dusk", "which gate closes at dusk and which opens at dawn " * 2
    assert model.count_tokens(short) <= 16 < model.count_tokens(long)
    ran_on: list[str] = []
    original = model._embed_batch
    monkeypatch.setattr(
        model, "_embed_batch", lambda batch: ran_on.append(threading.current_thread().name) or original(batch)
    )

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
    import asyncio
    import threading

    from chains.embeddings import QUERY_THREAD

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
    fits, over = (" ".join(["gate"] * (model.inline_tokens - 2 + extra)) for extra in (0, 1))  # with [CLS], [SEP]
    assert (model.count_tokens(fits), model.count_tokens(over)) == (model.inline_tokens, model.inline_tokens + 1)
    ran_on: list[str] = []
    original = model._embed_batch
    monkeypatch.setattr(
        model, "_embed_batch", lambda batch: ran_on.append(threading.current_thread().name) or original(batch)
    )

    async def ask() -> str:
        await model.aembed_query(fits)
        await model.aembed_query(over)
        return threading.current_thread().name

    loop_thread = asyncio.run(ask())
    assert ran_on[0] == loop_thread and ran_on[1].startswith(QUERY_THREAD)


def test_a_query_abandoned_while_it_waits_is_not_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that goes away (its request task cancelled) costs no inference if its turn had not come."""
    import asyncio

    from chains.embeddings import OnnxMiniLMEmbeddings

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
