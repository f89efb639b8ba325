"""Fixtures shared by the API tests: the CLI against the session's database, and the service's answerer
swapped for ChatOpenAI pointed at a wire-level OpenAI server."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.state import AppState
from chains.answer_cache import InProcessCache
from chains.cached_rag import CachedRag
from chains.generate import OpenAIAnswerer
from chains.rag import RagChain
from core.settings import Settings, get_settings
from tests.conftest import make_settings
from tests.wire import Reply, wire_server


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CHUNK_SIZE_TOKENS", "120")
    monkeypatch.setenv("CHUNK_OVERLAP_TOKENS", "20")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def openai_chain(app_state: AppState, tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Swap the service's answerer for ChatOpenAI pointed at a wire-level OpenAI server."""
    replies: list[Reply] = []
    with wire_server(lambda r: replies.pop(0)) as server:
        settings = make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1")
        chain = RagChain(
            app_state.db, app_state.embeddings, app_state.rag.reranker, OpenAIAnswerer(settings), app_state.settings
        )
        monkeypatch.setattr(app_state, "cached", CachedRag(chain, InProcessCache(100), None, app_state.embeddings))
        yield replies, server
