from __future__ import annotations

from ragapi.ingestion.chunking import chunk_document, make_splitter, token_length
from ragapi.ingestion.parsers import ParsedDocument, Section


def test_chunks_respect_the_token_budget_and_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)]
    doc = ParsedDocument("T", "text/plain", [Section(" ".join(sentences), page=3, heading="Intro")])
    chunks = chunk_document(doc, make_splitter(64, 16))
    assert len(chunks) > 10
    assert all(token_length(c.text) <= 64 for c in chunks)
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    assert all(c.metadata == {"page": 3, "heading": "Intro"} for c in chunks)
    # consecutive chunks overlap: the start of one repeats the end of the previous
    assert any(chunks[1].text[:20] in chunks[0].text for _ in [0])


def test_short_sections_stay_whole_and_keep_their_own_metadata() -> None:
    doc = ParsedDocument("T", "application/pdf", [Section("Page one.", page=1), Section("Page two.", page=2)])
    chunks = chunk_document(doc, make_splitter(64, 16))
    assert [(c.text, c.metadata["page"]) for c in chunks] == [("Page one.", 1), ("Page two.", 2)]
