from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ragapi.core.settings import Reranker, Settings
from tests.conftest import make_settings


def test_overlap_must_be_smaller_than_chunk(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CHUNK_OVERLAP_TOKENS"):
        make_settings(tmp_path, chunk_size_tokens=100, chunk_overlap_tokens=100)


def test_reranker_auto_follows_configuration(tmp_path: Path) -> None:
    assert make_settings(tmp_path).effective_reranker is Reranker.NONE
    assert make_settings(tmp_path, cohere_api_key="k").effective_reranker is Reranker.COHERE
    assert (
        make_settings(tmp_path, reranker_model="Xenova/ms-marco-MiniLM-L-6-v2").effective_reranker is Reranker.FASTEMBED
    )
    assert make_settings(tmp_path, cohere_api_key="k", reranker="none").effective_reranker is Reranker.NONE


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_QUERY_CHARS", "1234")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/rag")
    monkeypatch.setenv("JWT_SECRET", "s" * 32)
    from ragapi.core.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.max_query_chars == 1234
    assert settings.database_url is not None
    assert "p@db" not in repr(settings)  # secrets are not printed


def test_database_url_must_be_postgres(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="postgresql"):
        make_settings(tmp_path, database_url="mysql://u:p@h/db")
    good = make_settings(tmp_path, database_url="postgresql+asyncpg://u:p@h/db", jwt_secret="s" * 32)
    assert good.database_url is not None


def test_public_url_is_an_address_without_query(tmp_path: Path) -> None:
    assert (
        make_settings(tmp_path, public_url="https://rag.example.com/api/").public_url == "https://rag.example.com/api"
    )
    assert make_settings(tmp_path, public_url="").public_url is None
    for bad in ("rag.example.com", "ftp://rag.example.com", "https://rag.example.com/?a=1", "https:///x"):
        with pytest.raises(ValidationError, match="PUBLIC_URL|public_url"):
            make_settings(tmp_path, public_url=bad)


def test_replicas_need_a_shared_jwt_secret(tmp_path: Path) -> None:
    from ragapi.tenants.tokens import signing_key

    with pytest.raises(ValueError, match="JWT_SECRET must be set"):
        signing_key(make_settings(tmp_path, database_url="postgresql://u:p@h/db"))
    generated = signing_key(make_settings(tmp_path))
    assert len(generated) >= 32 and signing_key(make_settings(tmp_path)) == generated  # kept across restarts
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValidationError, match="at least 32"):
        make_settings(tmp_path, jwt_secret="short")
    with pytest.raises(ValidationError):
        make_settings(tmp_path, trusted_proxies=["10.0.0.0/8", "not-a-network"])


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragapi.core.settings import get_settings

    (tmp_path / "openai_api_key").write_text("sk-from-file")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    get_settings.cache_clear()
    try:
        key = get_settings().openai_api_key
        assert key is not None and key.get_secret_value() == "sk-from-file"
    finally:
        get_settings.cache_clear()


def test_empty_variables_mean_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`OPENAI_API_KEY=` in a compose .env must not switch generation to OpenAI with an empty key."""
    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("SHUTDOWN_TIMEOUT_S", "")
    from ragapi.core.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.openai_api_key is None and settings.redis_url is None and settings.shutdown_timeout_s == 30


@pytest.mark.parametrize("name", ["QUERY_EMBEDDING_NICE", "INGEST_NICE"])
@pytest.mark.parametrize("value", ["-1", "20"])
def test_cpu_priorities_outside_linux_nice_range_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Negative nice needs privileges and 20+ does not exist: refused at start-up, naming the setting."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    monkeypatch.setenv(name, "19")
    assert getattr(Settings(_env_file=None, data_dir=tmp_path), name.lower()) == 19  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "bad", "edge"),
    [
        ("QUERY_EMBEDDING_CONCURRENCY", "0", "64"),
        ("QUERY_EMBEDDING_CONCURRENCY", "65", "1"),
        ("QUERY_EMBEDDING_INLINE_TOKENS", "-1", "0"),
        ("QUERY_EMBEDDING_INLINE_TOKENS", "257", "256"),
        ("QUERY_EMBEDDING_INLINE_MS", "-1", "0"),
        ("QUERY_EMBEDDING_INLINE_MS", "51", "50"),
    ],
)
def test_query_embedding_limits_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, bad: str, edge: str
) -> None:
    """No threads, more word pieces inline than the model reads (256), or a budget that would hold the
    event loop for more than 50 ms are refused at start-up, naming the setting; the bounds are accepted."""
    monkeypatch.setenv(name, bad)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    monkeypatch.setenv(name, edge)
    assert getattr(Settings(_env_file=None, data_dir=tmp_path), name.lower()) == int(edge)  # type: ignore[call-arg]


def test_int8_products_switch_takes_booleans_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo must not silently pick a numeric path: refused at start-up, naming the setting."""
    monkeypatch.setenv("EMBEDDING_INT8_MATMUL", "sometimes")
    with pytest.raises(ValidationError, match="embedding_int8_matmul"):
        Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    monkeypatch.setenv("EMBEDDING_INT8_MATMUL", "false")
    assert Settings(_env_file=None, data_dir=tmp_path).embedding_int8_matmul is False  # type: ignore[call-arg]


def test_groups_cover_every_setting_once_with_a_description() -> None:
    """The configuration reference is generated from GROUPS: a field outside them, in two of them, or
    without a description would be missing from the docs or documented twice."""
    from ragapi.core.settings import GROUPS

    grouped = [name for group in GROUPS for name in group.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields)
    assert len(grouped) == len(set(grouped))
    assert all(group.__doc__ for group in GROUPS)
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


@pytest.mark.parametrize(
    ("variables", "match"),
    [
        ({"CHUNK_SIZE_TOKENS": "64", "CHUNK_OVERLAP_TOKENS": "64"}, "CHUNK_OVERLAP_TOKENS"),
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "postgresql"),
        ({"JWT_SECRET": "short"}, "at least 32"),
        ({"TRUSTED_PROXIES": '["not-a-network"]'}, "trusted_proxies"),
        ({"URL_FETCH_ALLOWED_NETWORKS": '["10.0.0.0/8", "nope"]'}, "url_fetch_allowed_networks"),
    ],
)
def test_every_group_validator_runs_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], match: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=match):
        Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
