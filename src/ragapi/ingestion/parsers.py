"""Turn uploaded bytes into text sections that remember where they came from (page, heading).

Supported: plain text, Markdown, HTML, PDF (pypdf), DOCX (python-docx), JSON. The type is taken from the
file extension, then from the declared content type; anything else is refused with 415.

Whatever the parser, the text it extracts (sections, headings, title) loses the characters PostgreSQL
cannot store, NUL and lone UTF-16 surrogates, once, in `parse()`; how many were removed is reported
with the document (`ParsedDocument.removed_characters`) rather than refusing it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote, urlsplit

from ragapi.core.errors import UnparseableDocument, UnsupportedMediaType
from ragapi.core.inputs import strip_text


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds that keep hostile files (zip bombs, decompression bombs, huge PDFs) from exhausting memory."""

    max_pdf_pages: int = 2000
    max_archive_bytes: int = 100 * 1024 * 1024
    max_archive_ratio: int = 100


@dataclass(slots=True)
class ParsedDocument:
    title: str
    content_type: str
    sections: list[Section] = field(default_factory=list)
    removed_characters: int = 0  # NUL and lone surrogates removed from the extracted text

    @property
    def char_count(self) -> int:
        return sum(len(s.text) for s in self.sections)


EXTENSIONS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".json": "application/json",
}


def detect_type(filename: str | None, declared: str | None) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    base = (declared or "").split(";")[0].strip().lower()
    if base in EXTENSIONS.values():
        return base
    shown = suffix or base or "unknown"
    raise UnsupportedMediaType(f"unsupported file type {shown!r}; supported: {', '.join(sorted(EXTENSIONS))}")


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnparseableDocument("file looks binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnparseableDocument(f"text is not valid UTF-8 (byte {exc.start})") from exc


# Titles that tools write when the author gave none: ReportLab's "untitled", Google Docs' "Untitled
# document", Dreamweaver's "Untitled Document", Photoshop's "Untitled-1". They name no document.
_PLACEHOLDER_TITLE = re.compile(r"\s*untitled(?:[\s_-]*(?:document|page))?(?:[\s_-]*\d+)?\s*", re.IGNORECASE)


def _named(*titles: str | None) -> str:
    """The first title that names the document: not empty, not a tool's placeholder."""
    return next((t.strip() for t in titles if t and t.strip() and not _PLACEHOLDER_TITLE.fullmatch(t)), "")


def _stem(filename: str | None, text: str = "") -> str:
    """The title of a document that has none of its own: its file name without a document type's extension
    ("report.pdf" → "report", "example.com" as it is), else its first line (JSON documents without a file)."""
    name = PurePath((filename or "").replace("\\", "/")).name
    if PurePath(name).suffix.lower() in EXTENSIONS:
        name = PurePath(name).stem
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return _named(name) or first[:120] or name or "document"


def url_file_name(url: str) -> str:
    """The file name a URL document is known by: its last path segment, else its host."""
    parts = urlsplit(url)
    segment = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return segment or parts.hostname or url


def parse_text(data: bytes, filename: str | None) -> ParsedDocument:
    text = _decode(data)
    return ParsedDocument(title=_stem(filename, text), content_type="text/plain", sections=[Section(text)])


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def parse_markdown(data: bytes, filename: str | None) -> ParsedDocument:
    text = _decode(data)
    sections: list[Section] = []
    heading: str | None = None
    title: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        body = "\n".join(buffer).strip()
        if body:
            sections.append(Section(body, heading=heading))
        buffer.clear()

    for line in text.splitlines():
        match = _MD_HEADING.match(line)
        if match:
            flush()
            heading = match.group(2)
            title = title or heading
            buffer.append(line)  # the heading text is searchable too
        else:
            buffer.append(line)
    flush()
    return ParsedDocument(title=_named(title) or _stem(filename, text), content_type="text/markdown", sections=sections)


def parse_html(data: bytes, filename: str | None) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    title = _named(title_tag.get_text(strip=True) if title_tag else "", h1.get_text(strip=True) if h1 else "")
    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "p", "li", "pre", "td", "blockquote"]):
        if element.find_parent(["p", "li", "td", "blockquote"]) is not None:
            continue  # counted with its block parent
        content = element.get_text(" ", strip=True)
        if not content:
            continue
        if element.name in ("h1", "h2", "h3", "h4"):
            if parts:
                sections.append(Section("\n".join(parts), heading=heading))
                parts = []
            heading = content
        parts.append(content)
    if parts:
        sections.append(Section("\n".join(parts), heading=heading))
    if not sections:  # documents without block markup
        loose = body.get_text("\n", strip=True)
        if loose:
            sections.append(Section(loose))
    return ParsedDocument(
        title=title or _stem(filename, sections[0].text if sections else ""),
        content_type="text/html",
        sections=sections,
    )


def parse_pdf(data: bytes, filename: str | None, limits: ParseLimits) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnparseableDocument("PDF is encrypted")
        if len(reader.pages) > limits.max_pdf_pages:
            raise UnparseableDocument(f"PDF has {len(reader.pages)} pages; the limit is {limits.max_pdf_pages}")
        pages = [Section(page.extract_text() or "", page=n) for n, page in enumerate(reader.pages, start=1)]
        meta_title = reader.metadata.title if reader.metadata else None
    except UnparseableDocument:
        raise
    except LimitReachedError as exc:  # pypdf's own decompression-bomb guard
        raise UnparseableDocument("PDF stream expands beyond the decompression limit") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise UnparseableDocument(f"PDF could not be read: {type(exc).__name__}") from exc
    sections = [s for s in pages if s.text.strip()]
    return ParsedDocument(
        title=_named(meta_title) or _stem(filename, sections[0].text if sections else ""),
        content_type="application/pdf",
        sections=sections,
    )


def check_archive(data: bytes, limits: ParseLimits) -> None:
    """Refuse zip bombs from the central directory, before anything is decompressed."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UnparseableDocument("DOCX could not be read: not a Word document") from exc
    if len(entries) > 10_000:
        raise UnparseableDocument(f"DOCX has {len(entries)} parts; that is not a Word document")
    total = sum(e.file_size for e in entries)
    if total > limits.max_archive_bytes:
        raise UnparseableDocument(f"DOCX expands to {total} bytes; the limit is {limits.max_archive_bytes}")
    for entry in entries:
        if entry.file_size > limits.max_archive_ratio * max(entry.compress_size, 1) and entry.file_size > 1_000_000:
            raise UnparseableDocument(f"DOCX part {entry.filename!r} is a decompression bomb")


def parse_docx(data: bytes, filename: str | None, limits: ParseLimits) -> ParsedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_archive(data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError) as exc:
        raise UnparseableDocument("DOCX could not be read: not a Word document") from exc
    except Exception as exc:  # zipfile.BadZipFile and lxml errors surface here
        raise UnparseableDocument(f"DOCX could not be read: {type(exc).__name__}") from exc
    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    title = _named(document.core_properties.title)
    for paragraph in document.paragraphs:
        content = paragraph.text.strip()
        if not content:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            if parts:
                sections.append(Section("\n".join(parts), heading=heading))
                parts = []
            heading = content
            title = title or _named(content)
        parts.append(content)
    if parts:
        sections.append(Section("\n".join(parts), heading=heading))
    return ParsedDocument(
        title=title or _stem(filename, sections[0].text if sections else ""),
        content_type=EXTENSIONS[".docx"],
        sections=sections,
    )


def _json_lines(value: Any) -> list[str]:
    """`path: value` lines of every scalar in document order, without recursion (any depth json.loads
    accepts is flattened)."""
    lines: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, path) for v in reversed(item))
        elif item is not None:
            lines.append(f"{path}: {item}" if path else str(item))
    return lines


def parse_json(data: bytes, filename: str | None) -> ParsedDocument:
    try:
        value = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise UnparseableDocument(f"invalid JSON at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise UnparseableDocument("JSON is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's conversion limit (4,300 digits)
        raise UnparseableDocument(f"JSON could not be read: {type(exc).__name__}") from exc
    named = ""
    if isinstance(value, dict):
        given = value.get("title")
        if isinstance(given, str | int | float) and not isinstance(given, bool):
            named = _named(str(given))
        body = value.get("text") or value.get("content")
        if isinstance(body, str):
            title = named or _stem(filename, body)
            return ParsedDocument(title=title, content_type="application/json", sections=[Section(body)])
    text = "\n".join(_json_lines(value))
    return ParsedDocument(
        title=named or _stem(filename, text), content_type="application/json", sections=[Section(text)]
    )


PARSERS: dict[str, Callable[[bytes, str | None], ParsedDocument]] = {
    "text/plain": parse_text,
    "text/markdown": parse_markdown,
    "text/html": parse_html,
    "application/json": parse_json,
}
BOUNDED_PARSERS: dict[str, Callable[[bytes, str | None, ParseLimits], ParsedDocument]] = {
    "application/pdf": parse_pdf,
    EXTENSIONS[".docx"]: parse_docx,
}


def parse(
    data: bytes, filename: str | None, content_type: str | None, limits: ParseLimits | None = None
) -> ParsedDocument:
    kind = detect_type(filename, content_type)
    if not data:
        raise UnparseableDocument("file is empty")
    try:
        if kind in BOUNDED_PARSERS:
            parsed = BOUNDED_PARSERS[kind](data, filename, limits or ParseLimits())
        else:
            parsed = PARSERS[kind](data, filename)
    except RecursionError as exc:  # a document nested deeper than the parser can follow
        raise UnparseableDocument("document is nested too deeply") from exc
    _strip_unstorable(parsed, filename)
    parsed.sections = [s for s in parsed.sections if s.text.strip()]
    if not parsed.sections:
        raise UnparseableDocument("no text could be extracted (scanned PDF or empty document?)")
    return parsed


def _strip_unstorable(parsed: ParsedDocument, filename: str | None) -> None:
    """Remove NUL and lone surrogates from every text the parser extracted, counting each removed
    character once: headings, and a title taken from the text, repeat characters already counted."""
    removed = 0
    raw_texts = [s.text for s in parsed.sections]
    sections: list[Section] = []
    for section in parsed.sections:
        text, n = strip_text(section.text)
        heading, m = strip_text(section.heading) if section.heading is not None else (None, 0)
        removed += n
        sections.append(dataclasses.replace(section, text=text, heading=heading) if n or m else section)
    title, n = strip_text(parsed.title)
    if n and not any(parsed.title in raw for raw in raw_texts):
        removed += n
    if n and not _named(title):
        title = _stem(filename, sections[0].text if sections else "")
    parsed.sections, parsed.title = sections, title
    parsed.removed_characters += removed
