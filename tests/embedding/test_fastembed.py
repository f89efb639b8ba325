"""fastembed is an optional extra: without it, choosing it says how to install it."""

from __future__ import annotations

import importlib.util

import pytest

from ragapi.embedding import build_embeddings
from tests.conftest import make_settings


@pytest.mark.skipif(importlib.util.find_spec("fastembed") is not None, reason="the fastembed extra is installed")
def test_without_the_extra_the_error_names_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="uv sync --extra fastembed"):
        build_embeddings(make_settings(tmp_path, embedding_provider="fastembed"))
