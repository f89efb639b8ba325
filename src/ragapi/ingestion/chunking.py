"""Token-aware splitting with langchain-text-splitters; each chunk keeps its page and heading."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ragapi.embedding import minilm_files
from ragapi.ingestion.parsers import ParsedDocument


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_files()[1]))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def token_length(text: str) -> int:
    """Length in word pieces of the default embedding model, which is what truncation counts."""
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


@dataclass(frozen=True, slots=True)
class TextChunk:
    ord: int
    text: str
    metadata: dict[str, Any]


def make_splitter(chunk_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=token_length,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )


def chunk_document(doc: ParsedDocument, splitter: RecursiveCharacterTextSplitter) -> list[TextChunk]:
    chunks: list[TextChunk] = []
    for section in doc.sections:
        meta: dict[str, Any] = {}
        if section.page is not None:
            meta["page"] = section.page
        if section.heading:
            meta["heading"] = section.heading
        if token_length(section.text) <= splitter._chunk_size:  # noqa: SLF001 - whole sections need no split
            pieces = [section.text.strip()]
        else:
            pieces = [p.strip() for p in splitter.split_text(section.text)]
        chunks.extend(TextChunk(ord=len(chunks) + i, text=p, metadata=dict(meta)) for i, p in enumerate(pieces) if p)
    return [TextChunk(ord=n, text=c.text, metadata=c.metadata) for n, c in enumerate(chunks)]
