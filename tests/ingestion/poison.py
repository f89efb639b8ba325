"""Poison items: documents and URLs that once made ingestion raise something other than a RagApiError,
stalling their whole batch. Made on the fly, like tests/documents.py."""

from __future__ import annotations

from ragapi.ingestion.pipeline import IngestItem
from tests.documents import pdf_from_objects

NUL_TAIL = "The tail after the NUL mentions quinces."


def pdf_with_raw_text(*strings: bytes) -> bytes:
    """A one-page PDF showing these PDF string bodies as they are (`\\000` is a NUL character code), in
    Helvetica with WinAnsiEncoding, which pypdf extracts code for code."""
    shows = b" ".join(b"(" + s + b") Tj 0 -16 Td" for s in strings)
    content = b"BT /F1 12 Tf 72 700 Td " + shows + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    return pdf_from_objects(objects)


def text_with_late_nul() -> bytes:
    """Text whose first NUL comes after the 8 KiB the binary sniffing looks at."""
    head = "".join(f"Line {n}: the orchard report lists apples and pears.\n" for n in range(200)).encode()
    assert len(head) > 8192  # noqa: S101
    return head + b"\x00" + NUL_TAIL.encode()


def deep_json(depth: int = 100_000) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def poison() -> list[tuple[IngestItem, str, int | None, int]]:
    """Each poison item with what it must become: (item, status of the file, problem status or None,
    characters removed). URLs are never fetched: they are refused or do not resolve."""
    return [
        (IngestItem(b"", url="http://[::1/doc.txt"), "failed", 422, 0),
        (IngestItem(b"", url="http://docs.example:70000/doc.txt"), "failed", 422, 0),
        (IngestItem(b"", url="http://b\u00fccher.invalid/doc.txt"), "failed", 422, 0),  # IDN: attempted as punycode
        (IngestItem(deep_json(), "deep.json"), "failed", 422, 0),
        (IngestItem(b"[" * 100_000 + b"]" * 100_000, "deep-list.json"), "failed", 422, 0),
        (IngestItem(b'{"title": "Memo", "text": "Plums\\u0000 are ripe in August."}', "nul.json"), "created", None, 1),
        (IngestItem(b'{"text": "Figs \\ud800are dried in the sun."}', "surrogate.json"), "created", None, 1),
        (IngestItem(pdf_with_raw_text(b"Cherries \\000blossom in April."), "nul.pdf"), "created", None, 1),
        (IngestItem(text_with_late_nul(), "late-nul.txt"), "created", None, 1),
    ]
