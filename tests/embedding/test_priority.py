"""Ingestion embeds below the priority of queries embedded in the same process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ragapi.embedding import LowPriorityEmbeddings, OnnxMiniLMEmbeddings, embedding_identity, ingestion_embeddings
from tests.conftest import make_settings


def nice_of(tid: int) -> int:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat: nice


def test_ingestion_embeds_at_lower_cpu_priority_than_queries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every thread that computes ingestion embeddings (the caller and onnxruntime's pool) runs at
    INGEST_NICE; this thread, which embeds queries, keeps its priority; the vectors are the same."""
    before = set(os.listdir("/proc/self/task"))
    queries = OnnxMiniLMEmbeddings(threads=2)
    ingest = ingestion_embeddings(make_settings(tmp_path, ingest_nice=7, embedding_threads=2), queries)
    assert isinstance(ingest, LowPriorityEmbeddings)
    assert ingest.embed_documents(["the same text"]) == queries.embed_documents(["the same text"])
    assert ingest.embed_query("the same text") == queries.embed_query("the same text")
    new = set(os.listdir("/proc/self/task")) - before
    niced = [tid for tid in new if nice_of(int(tid)) == 7]
    assert len(niced) >= 2, "the embedding thread and onnxruntime's pool thread(s)"
    assert nice_of(threading.get_native_id()) == 0
    assert embedding_identity(ingest) == embedding_identity(queries)
    assert ingestion_embeddings(make_settings(tmp_path, ingest_nice=0), queries) is queries
