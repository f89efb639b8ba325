from __future__ import annotations

import pytest

from ragapi.core.errors import UnparseableDocument, UnsupportedMediaType
from ragapi.ingestion.parsers import detect_type, parse, url_file_name
from tests.documents import docx_bytes, pdf_bytes
from tests.ingestion.poison import NUL_TAIL, deep_json, pdf_with_raw_text, text_with_late_nul


def test_plain_text_and_title_from_filename() -> None:
    doc = parse(b"Hello world.\nSecond line.", "notes.txt", None)
    assert doc.title == "notes"
    assert doc.sections[0].text.startswith("Hello world.")


def test_markdown_sections_keep_headings() -> None:
    doc = parse(b"# Handbook\n\nIntro text.\n\n## Leave\n\nTwenty days per year.\n", "h.md", None)
    assert doc.title == "Handbook"
    assert [s.heading for s in doc.sections] == ["Handbook", "Leave"]
    assert "Twenty days" in doc.sections[1].text


def test_html_drops_scripts_and_keeps_headings() -> None:
    html = b"""<html><head><title>Policy</title><script>alert('x')</script></head>
    <body><h1>Travel</h1><p>Book trains for trips under 4 hours.</p><h2>Hotels</h2><ul><li>Max 150 EUR</li></ul></body></html>"""
    doc = parse(html, "p.html", "text/html")
    assert doc.title == "Policy"
    text = " ".join(s.text for s in doc.sections)
    assert "alert" not in text and "Book trains" in text and "150 EUR" in text
    assert [s.heading for s in doc.sections] == ["Travel", "Hotels"]


def test_pdf_pages_are_numbered() -> None:
    doc = parse(pdf_bytes(["First page about apples.", "Second page about pears."], title="Fruit"), "f.pdf", None)
    assert doc.title == "Fruit"
    assert [(s.page, "pears" in s.text) for s in doc.sections] == [(1, False), (2, True)]


def test_docx_headings() -> None:
    doc = parse(docx_bytes("Onboarding", ["Laptops ship on day one.", "Badges at reception."]), "o.docx", None)
    assert doc.title == "Onboarding"
    assert doc.sections[0].heading == "Onboarding"
    assert "Badges at reception." in doc.sections[0].text


def test_json_text_field_or_flattened() -> None:
    assert parse(b'{"title": "T", "text": "Body here"}', "a.json", None).sections[0].text == "Body here"
    flat = parse(b'{"product": {"name": "Widget", "price": 5}, "tags": ["a", "b"]}', "b.json", None)
    assert "product.name: Widget" in flat.sections[0].text and "tags: b" in flat.sections[0].text


def test_type_from_content_type_when_no_extension() -> None:
    assert detect_type("upload", "text/markdown; charset=utf-8") == "text/markdown"


@pytest.mark.parametrize(
    ("data", "name", "match"),
    [
        (b"", "empty.txt", "empty"),
        (b"   \n\n ", "blank.txt", "no text"),
        (b"\x00\x01\x02binary", "bin.txt", "binary"),
        (b"\xff\xfe\xfa", "latin.txt", "UTF-8"),
        (b"%PDF-1.4 garbage", "broken.pdf", "PDF"),
        (b"not a zip", "broken.docx", "DOCX"),
        (b"{not json", "broken.json", "JSON"),
        (pdf_bytes([""]), "scan.pdf", "no text"),
    ],
)
def test_unparseable_documents_say_why(data: bytes, name: str, match: str) -> None:
    with pytest.raises(UnparseableDocument, match=match):
        parse(data, name, None)


@pytest.mark.parametrize(("name", "ctype"), [("a.exe", None), ("a.png", "image/png"), (None, None)])
def test_unsupported_types(name: str | None, ctype: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="supported"):
        parse(b"data", name, ctype)


def test_docx_zip_bomb_is_refused_before_inflating() -> None:
    import resource

    from tests.documents import docx_bomb

    bomb = docx_bomb(200 << 20)
    assert len(bomb) < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnparseableDocument, match="DOCX expands|decompression bomb"):
        parse(bomb, "bomb.docx", None)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024  # nothing close to the 200 MiB it would inflate to


def test_docx_ratio_limit_and_configurable_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ragapi.ingestion.parsers import ParseLimits
    from tests.documents import docx_bomb, docx_bytes

    with pytest.raises(UnparseableDocument, match="decompression bomb"):
        parse(docx_bomb(20 << 20), "ratio.docx", None)
    real = docx_bytes("Title", ["Some text."])
    with pytest.raises(UnparseableDocument, match="limit is 1024"):
        parse(real, "small.docx", None, ParseLimits(max_archive_bytes=1024))


def test_pdf_decompression_bomb_fails_with_bounded_memory() -> None:
    import resource

    from tests.documents import pdf_bomb

    bomb = pdf_bomb(300 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnparseableDocument):
        parse(bomb, "bomb.pdf", None)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_pdf_page_limit() -> None:
    from ragapi.ingestion.parsers import ParseLimits

    with pytest.raises(UnparseableDocument, match="3 pages; the limit is 2"):
        parse(pdf_bytes(["a", "b", "c"]), "long.pdf", None, ParseLimits(max_pdf_pages=2))


@pytest.mark.parametrize(
    ("data", "name", "removed", "kept"),
    [
        (text_with_late_nul(), "late.txt", 1, NUL_TAIL),
        (pdf_with_raw_text(b"Cherries \\000blossom in April.", b"Second \\000line\\000."), "nul.pdf", 3, "blossom"),
        (b'{"title": "Me\\u0000mo", "text": "Plums\\u0000 are \\ud800ripe."}', "a.json", 3, "Plums are ripe."),
        (b'{"items": ["\\udfffx", {"k": "\\u0000y"}]}', "b.json", 2, "items.k: y"),
        (b"x" * 9000 + b"\n# Head\x00ing\n\nBody\x00 end.", "c.md", 2, "Heading"),  # heading counted once
        (b"<p>" + b"p " * 5000 + b"</p><h2>Sec\x00tion</h2><p>Para\x00graph</p>", "d.html", 2, "Paragraph"),
    ],
)
def test_nul_and_lone_surrogates_are_removed_and_counted(data: bytes, name: str, removed: int, kept: str) -> None:
    doc = parse(data, name, None)
    texts = [doc.title, *(s.text for s in doc.sections), *(s.heading or "" for s in doc.sections)]
    assert doc.removed_characters == removed
    assert not any("\x00" in t or any("\ud800" <= c <= "\udfff" for c in t) for t in texts)
    assert any(kept in t for t in texts)


def test_clean_documents_report_nothing_removed() -> None:
    assert parse(b"Nothing odd here.", "fine.txt", None).removed_characters == 0


def test_a_title_made_only_of_removed_characters_falls_back_to_the_file_name() -> None:
    doc = parse(b'{"title": "\\u0000", "text": "Body."}', "memo.json", None)
    assert (doc.title, doc.removed_characters) == ("memo", 1)


@pytest.mark.parametrize("data", [deep_json(), b"[" * 100_000 + b"]" * 100_000, deep_json(5_000)])
def test_json_nested_too_deeply_is_unparseable(data: bytes) -> None:
    with pytest.raises(UnparseableDocument, match="nested too deeply"):
        parse(data, "deep.json", None)


def test_json_nested_as_deep_as_the_decoder_allows_is_flattened_without_recursion() -> None:
    depth = 900  # json.loads accepts it; a recursive flattening would not (sys.getrecursionlimit() is 1000)
    doc = parse(b'{"a": ' * depth + b'"leaf"' + b"}" * depth, "d.json", None)
    assert doc.sections[0].text.endswith(".a.a: leaf")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"42", "42"),
        (b'"just a string"', "just a string"),
        (b"[1, null, true, 2.5]", "1\nTrue\n2.5"),
        (b'{"title": {"nested": [1]}, "n": 1}', "n: 1"),
        (b'{"title": ["x"], "text": 7, "other": "kept"}', "other: kept"),
        (b'{"title": "", "content": "Content body."}', "Content body."),
    ],
)
def test_json_that_decodes_to_something_odd_does_not_crash(data: bytes, expected: str) -> None:
    doc = parse(data, "odd.json", None)
    assert expected in doc.sections[0].text
    assert isinstance(doc.title, str) and doc.title


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"null", "no text"), (b"{}", "no text"), (b"[" + b"9" * 5000 + b"]", "JSON could not be read")],
)
def test_json_without_text_or_beyond_limits_says_why(data: bytes, match: str) -> None:
    with pytest.raises(UnparseableDocument, match=match):
        parse(data, "odd.json", None)


@pytest.mark.parametrize(
    ("data", "name", "title"),
    [
        (pdf_bytes(["Expense reports are due by the 5th."]), "q3-expenses.pdf", "q3-expenses"),  # ReportLab: "untitled"
        (pdf_bytes(["Body."], title="Untitled document"), "memo.PDF", "memo"),
        (b"<title>Untitled Document</title><h1>Travel</h1><p>Trains only.</p>", "p.html", "Travel"),
        (b"<title>untitled-1</title><p>Trains only.</p>", "travel-policy.html", "travel-policy"),
        (docx_bytes("Untitled", ["Badges at reception."]), "onboarding.docx", "onboarding"),
        (b'{"title": "Untitled", "text": "Body here."}', "faq.json", "faq"),
        (b"Plain words.", "example.com", "example.com"),  # a URL's host: not a file extension
        (b"Plain words.", "v1.2 notes", "v1.2 notes"),
        (b"Plain words.", r"C:\Users\ann\Desktop\notes.txt", "notes"),
        (b"Plain words.", "Untitled.txt", "Plain words."),
    ],
)
def test_a_document_without_a_title_of_its_own_is_named_by_its_file(data: bytes, name: str, title: str) -> None:
    assert parse(data, name, "text/plain").title == title  # the extension, if any, decides the type


def test_a_document_without_title_or_file_name_is_named_by_its_first_line() -> None:
    assert parse(b"\n  Refund policy\nRefunds take 5 days.", None, "text/plain").title == "Refund policy"
    assert parse(b'{"text": "Leave policy\\nTwenty days."}', None, "application/json").title == "Leave policy"
    assert parse(b"<p>Trains only.</p>", None, "text/html").title == "Trains only."


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://example.com/docs/handbook.pdf?version=2#page=3", "handbook.pdf"),
        ("https://example.com/guides/setup/", "setup"),
        ("https://example.com/a%20b.txt", "a b.txt"),
        ("https://example.com/", "example.com"),
        ("https://docs.example.com", "docs.example.com"),
    ],
)
def test_a_url_document_is_known_by_its_last_path_segment_or_host(url: str, name: str) -> None:
    assert url_file_name(url) == name
