"""Fixtures shared by the API tests: the CLI against the session's database, the service's answerer
swapped for OpenAIAnswerer pointed at a wire-level OpenAI server, and the one OpenID Connect provider of
the session (single sign-on through the API, and through the console in the browser tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from ragapi.answering.cache import AnswerCache
from ragapi.answering.exact_cache import InProcessCache
from ragapi.answering.pipeline import RagPipeline
from ragapi.api.state import AppState
from ragapi.core.settings import Settings, get_settings
from ragapi.generation.answerers import OpenAIAnswerer, build_extractive
from tests.conftest import make_settings
from tests.services import OidcProvider
from tests.wire import Reply, wire_server


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """tests/oidc/provider.mjs, started once for the session."""
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"))
    provider.start()
    yield provider
    provider.stop()


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
    """The answering service with OpenAIAnswerer pointed at a wire-level OpenAI server (and a cache of its own)."""
    replies: list[Reply] = []
    with wire_server(lambda r: replies.pop(0)) as server:
        settings = make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=server.url + "/v1")
        answers = app_state.answers
        pipeline = RagPipeline(
            answers.pipeline.search,
            answers.pipeline.reranker,
            OpenAIAnswerer(settings),
            app_state.embeddings,
            app_state.settings,
            extractive=build_extractive(app_state.settings, app_state.embeddings),  # as the service composes it
        )
        cache = AnswerCache(InProcessCache(100), None, app_state.embeddings, app_state.settings, pipeline.fingerprint())
        monkeypatch.setattr(answers, "pipeline", pipeline)
        monkeypatch.setattr(answers, "cache", cache)
        yield replies, server
