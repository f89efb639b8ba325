"""`make demo`'s entry point against the embedded default: the bundled public-domain documents loaded
into a tenant of its own, a first question answered from them with its citation; a second run reuses the
tenant and finds the documents unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragapi.api import demo

DOCUMENTS = Path(__file__).parents[2] / "examples" / "demo"


def test_the_demo_loads_its_documents_and_answers_with_a_citation(
    cli_env,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    demo.main([str(DOCUMENTS)])
    first = capsys.readouterr().out
    assert "gettysburg-address.txt: created" in first and "bill-of-rights.txt: created" in first
    answer = first.split("A: ", 1)[1].split("\n", 1)[0]
    assert "a new nation" in answer and "[1]" in answer
    assert "\n  [1] The Gettysburg Address: " in first  # the cited passage, titled by its first line
    assert "/console" in first and "X-API-Key: rag_" in first

    demo.main([str(DOCUMENTS)])
    again = capsys.readouterr().out
    assert "gettysburg-address.txt: unchanged" in again
    key = first.split("admin API key (kept in demo.json in DATA_DIR): ", 1)[1].split("\n", 1)[0]
    assert key in again  # the same tenant


def test_every_demo_document_says_where_it_comes_from() -> None:
    readme = (DOCUMENTS / "README.md").read_text()
    for document in DOCUMENTS.glob("*.txt"):
        assert f"`{document.name}`" in readme
