"""Migrations on a fresh embedded server: idempotent, and serialised when several processes start at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from ragapi.core.database import start_embedded_postgres, with_driver
from ragapi.core.migrate import alembic_config
from ragapi.retrieval.bm25 import term_keys
from ragapi.tenants.sealed import SecretBox

MIGRATION_LOCK = 7_270_736_900  # core/migrations/env.py
HEAD = ScriptDirectory.from_config(alembic_config("postgresql://unused", "unused")).get_current_head()


def migrate(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ragapi.api.cli", "migrate"], env=env, stderr=subprocess.PIPE)  # noqa: S603


def test_a_second_process_waits_for_the_migration_lock(tmp_path: Path) -> None:
    url = start_embedded_postgres(tmp_path / "pgdata")
    env = {**os.environ, "DATABASE_URL": url}
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        waiting = migrate(env)
        time.sleep(4)
        assert waiting.poll() is None  # blocked behind the lock, not racing
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        assert waiting.wait(timeout=120) == 0
    both = [migrate(env), migrate(env)]  # already migrated: both no-ops
    assert [p.wait(timeout=120) for p in both] == [0, 0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
        # No default account of any kind: the first superadmin is made with `ragapi users create`.
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
    engine.dispose()


def test_without_migrate_on_start_a_schema_behind_is_refused_until_migrated(tmp_path: Path) -> None:
    url = start_embedded_postgres(tmp_path / "pgdata")
    env = {**os.environ, "DATABASE_URL": url, "MIGRATE_ON_START": "false", "JWT_SECRET": "x" * 32}
    command = [sys.executable, "-m", "ragapi.api.cli", "tenants", "create", "Early", "--json"]
    refused = subprocess.run(command, env=env, capture_output=True, timeout=120)  # noqa: S603
    assert refused.returncode == 1
    assert f"this build needs {HEAD}: run `ragapi migrate`" in refused.stderr.decode()
    wait = [sys.executable, "-m", "ragapi.api.cli", "migrate", "--wait", "3"]  # the pods' init container
    waited = subprocess.run(wait, env=env, capture_output=True, timeout=120)  # noqa: S603
    assert waited.returncode == 1 and "run `ragapi migrate`" in waited.stderr.decode()
    assert migrate(env).wait(timeout=120) == 0
    assert subprocess.run(wait, env=env, capture_output=True, timeout=120).returncode == 0  # noqa: S603
    created = subprocess.run(command, env=env, capture_output=True, timeout=120)  # noqa: S603
    assert created.returncode == 0, created.stderr.decode()


def test_migrate_wait_waits_for_a_database_that_is_not_up_yet(tmp_path: Path) -> None:
    """The init container starts before the database accepts connections (or its name resolves): it
    keeps waiting, and fails with the connection error once the time is up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{closed_port}/db", "JWT_SECRET": "x" * 32}
    wait = [sys.executable, "-m", "ragapi.api.cli", "migrate", "--wait", "1"]
    waited = subprocess.run(wait, env=env, capture_output=True, timeout=120)  # noqa: S603
    output = waited.stdout.decode() + waited.stderr.decode()
    assert waited.returncode == 1
    assert "waiting for the database: OperationalError" in output and "Connection refused" in output


def test_the_hot_path_functions_go_with_a_downgrade_and_come_back(tmp_path: Path) -> None:
    url = start_embedded_postgres(tmp_path / "pgdata")
    config = alembic_config(url, "ragapi_app")
    functions = text(
        "SELECT array_agg(proname ORDER BY proname) FROM pg_proc "
        "WHERE proname IN ('admit_query', 'cache_scope', 'charge_usage', 'semantic_cache_nearest', 'semantic_cache_store')"
    )
    engine = create_engine(with_driver(url, "psycopg"))
    try:
        command.upgrade(config, "head")
        command.downgrade(config, "0008")
        with engine.connect() as conn:
            assert conn.execute(functions).scalar_one() is None
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(functions).scalar_one() == [
                "admit_query",
                "cache_scope",
                "charge_usage",
                "semantic_cache_nearest",
                "semantic_cache_store",
            ]
    finally:
        engine.dispose()


def test_metadata_copied_into_chunks_moves_back_to_its_document(tmp_path: Path) -> None:
    """0014 on a populated database: chunks keep only their own keys, filters still match the document's,
    and the downgrade puts the copies back."""
    url = start_embedded_postgres(tmp_path / "pgdata")
    config = alembic_config(url, "ragapi_app")
    command.upgrade(config, "0013")
    engine = create_engine(with_driver(url, "psycopg"))
    tenant, document = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-0000000000d0"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'Old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO documents (id, tenant_id, title, source, content_type, content_hash, metadata, "
                "chunk_count, size_bytes) VALUES (:d, :t, 'Doc', 'doc.pdf', 'application/pdf', 'h', "
                """'{"team": "hr", "page": 9}', 2, 10)"""
            ),
            {"d": document, "t": tenant},
        )
        for ord_, copied in enumerate(
            [
                '{"team": "hr", "page": 1, "source": "doc.pdf"}',
                '{"team": "hr", "page": 2, "heading": "B", "source": "doc.pdf"}',
            ]
        ):
            conn.execute(
                text(
                    "INSERT INTO chunks (id, tenant_id, document_id, ord, text, title, metadata, embedding_model, "
                    "embedding_dim, embedding, sparse, token_count) VALUES (gen_random_uuid(), :t, :d, :o, 'x', "
                    "'Doc', CAST(:m AS jsonb), 'm', 3, '[1,2,3]', '{1:1}/10', 1)"
                ),
                {"t": tenant, "d": document, "o": ord_, "m": copied},
            )
    command.upgrade(config, "0014")
    with engine.connect() as conn:
        own = conn.execute(text("SELECT metadata FROM chunks ORDER BY ord")).scalars().all()
        assert own == [{"page": 1}, {"page": 2, "heading": "B"}]
    command.downgrade(config, "0013")
    with engine.connect() as conn:
        restored = conn.execute(text("SELECT metadata FROM chunks ORDER BY ord")).scalars().all()
        assert restored[1] == {"team": "hr", "page": 2, "heading": "B", "source": "doc.pdf"}
    engine.dispose()


def test_a_tenants_data_moves_into_its_default_knowledge_base(tmp_path: Path) -> None:
    """0016 on a populated database: the knowledge base, its documents, chunks, BM25 statistics, jobs and
    logged queries become the tenant's `default` (whose id is the tenant's), the semantic cache starts
    empty, and the downgrade is refused once a tenant has a second knowledge base."""
    url = start_embedded_postgres(tmp_path / "pgdata")
    config = alembic_config(url, "ragapi_app")
    command.upgrade(config, "0015")
    engine = create_engine(with_driver(url, "psycopg"))
    tenant, document = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-0000000000d0"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'Old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO knowledge_bases (tenant_id, embedding_model, embedding_dim, chunk_count, token_count, "
                "version) VALUES (:t, 'm', 3, 1, 7, 4)"
            ),
            {"t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO documents (id, tenant_id, external_id, title, content_type, content_hash, chunk_count, "
                "size_bytes) VALUES (:d, :t, 'handbook', 'Doc', 'text/plain', 'h', 1, 10)"
            ),
            {"d": document, "t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO chunks (id, tenant_id, document_id, ord, text, title, embedding_model, embedding_dim, "
                "embedding, sparse, token_count) VALUES (gen_random_uuid(), :t, :d, 0, 'x', 'Doc', 'm', 3, "
                "'[1,2,3]', '{1:1}/10', 7)"
            ),
            {"t": tenant, "d": document},
        )
        conn.execute(text("INSERT INTO sparse_terms (tenant_id, term, df) VALUES (:t, 1, 1)"), {"t": tenant})
        conn.execute(
            text("INSERT INTO ingest_jobs (id, tenant_id, status) VALUES (gen_random_uuid(), :t, 'succeeded')"),
            {"t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO semantic_cache (id, tenant_id, kb_version, partition, embedding_dim, embedding, query, "
                "response, expires_at) VALUES (gen_random_uuid(), :t, 4, 'p', 3, '[1,2,3]', 'q', '{}', "
                "now() + interval '1 hour')"
            ),
            {"t": tenant},
        )
    command.upgrade(config, "0016")
    with engine.begin() as conn:
        kb = conn.execute(text("SELECT id::text, name, version, chunk_count, status FROM knowledge_bases")).one()
        assert tuple(kb) == (tenant, "default", 4, 1, "active")
        for table in ("documents", "chunks", "sparse_terms", "ingest_jobs"):
            owners = conn.execute(text(f"SELECT DISTINCT knowledge_base_id::text FROM {table}")).scalars().all()  # noqa: S608
            assert owners == [tenant], table
        assert conn.execute(text("SELECT count(*) FROM semantic_cache")).scalar_one() == 0
        # the same file may now be in another knowledge base of the tenant, not twice in one
        conn.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim) "
                "VALUES ('00000000-0000-0000-0000-0000000000b2', :t, 'wiki', 'm', 3)"
            ),
            {"t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO documents (id, tenant_id, knowledge_base_id, external_id, title, content_type, "
                "content_hash, chunk_count, size_bytes) VALUES (gen_random_uuid(), :t, "
                "'00000000-0000-0000-0000-0000000000b2', 'handbook', 'Doc', 'text/plain', 'h', 1, 10)"
            ),
            {"t": tenant},
        )
    try:
        command.downgrade(config, "0015")
        raise AssertionError("the downgrade merged two knowledge bases")
    except Exception as exc:  # noqa: BLE001 - the database's refusal, whatever the driver wraps it in
        assert "knowledge bases besides its default" in str(exc)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM knowledge_bases WHERE name = 'wiki'"))
    command.downgrade(config, "0015")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM chunks")).scalar_one() == 1
    command.upgrade(config, "head")
    engine.dispose()


def test_existing_chunks_get_their_term_keys(tmp_path: Path) -> None:
    """0020 on a populated database: each chunk's term keys are those ingestion writes now (the knowledge
    base's prefix over each term of its sparse vector); the downgrade drops them."""
    url = start_embedded_postgres(tmp_path / "pgdata")
    config = alembic_config(url, "ragapi_app")
    command.upgrade(config, "0017")
    engine = create_engine(with_driver(url, "psycopg"))
    tenant, document = "f0000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-0000000000d0"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'Old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, embedding_dim) "
                "VALUES (:t, :t, 'default', 'm', 3)"
            ),
            {"t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO documents (id, tenant_id, knowledge_base_id, title, content_type, content_hash, "
                "chunk_count, size_bytes) VALUES (:d, :t, :t, 'Doc', 'text/plain', 'h', 1, 10)"
            ),
            {"d": document, "t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ord, text, title, embedding_model, "
                "embedding_dim, embedding, sparse, token_count) VALUES (gen_random_uuid(), :t, :t, :d, 0, 'x', 'Doc', "
                "'m', 3, '[1,2,3]', '{7:0.5,999999999:1.5}/1000000000', 2)"
            ),
            {"t": tenant, "d": document},
        )
    command.upgrade(config, "0020")
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT term_keys FROM chunks")).scalar_one()
    assert keys == term_keys(uuid.UUID(tenant), [7, 999_999_999])
    with engine.begin() as conn:  # pending changes of the document frequencies go back into sparse_terms
        conn.execute(
            text("INSERT INTO sparse_terms (tenant_id, knowledge_base_id, term, df) VALUES (:t, :t, 7, 1)"),
            {"t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO sparse_term_deltas (tenant_id, knowledge_base_id, terms, dfs) VALUES (:t, :t, '{7,8}', '{1,2}')"
            ),
            {"t": tenant},
        )
    command.downgrade(config, "0017")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT term, df FROM sparse_terms ORDER BY term")).all() == [(7, 2), (8, 2)]
        columns = conn.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = 'chunks'"))
        assert "term_keys" not in columns.scalars().all()
    command.upgrade(config, "head")
    engine.dispose()


def test_identity_providers_secrets_are_sealed_and_users_get_external_ids(tmp_path: Path) -> None:
    """0021 on a populated database: a client secret stored in plaintext is sealed with the key the service
    passes in (and nothing else may be stored any more), and opened again by the downgrade; without the key
    it stops rather than leave the plaintext. Users may have an external id, unique in their tenant."""
    url = start_embedded_postgres(tmp_path / "pgdata")
    engine = create_engine(with_driver(url, "psycopg"))
    tenant = "f0000000-0000-0000-0000-00000000000b"
    box = SecretBox("a test key of at least thirty-two characters")
    command.upgrade(alembic_config(url, "ragapi_app"), "0020")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'Old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO identity_providers (tenant_id, issuer, client_id, client_secret) "
                "VALUES (:t, 'https://idp.example.com', 'ragapi', 'plain-secret')"
            ),
            {"t": tenant},
        )
    try:
        command.upgrade(alembic_config(url, "ragapi_app"), "0021")
        raise AssertionError("the plaintext secret was left as it was")
    except RuntimeError as exc:
        assert "ragapi migrate" in str(exc)
    command.upgrade(alembic_config(url, "ragapi_app", seal=box.seal), "0021")
    with engine.begin() as conn:
        stored = conn.execute(text("SELECT client_secret FROM identity_providers")).scalar_one()
        assert stored.startswith("enc:v1:") and "plain-secret" not in stored and box.open(stored) == "plain-secret"
        try:
            with conn.begin_nested():
                conn.execute(text("UPDATE identity_providers SET client_secret = 'plain-again'"))
            raise AssertionError("an unsealed secret was stored")
        except IntegrityError:
            pass
        conn.execute(
            text(
                "INSERT INTO users (id, tenant_id, email, password_hash, role, external_id) VALUES "
                "(gen_random_uuid(), :t, 'a@example.com', 'h', 'member', 'crm-1')"
            ),
            {"t": tenant},
        )
        try:
            with conn.begin_nested():
                conn.execute(
                    text(
                        "INSERT INTO users (id, tenant_id, email, password_hash, role, external_id) VALUES "
                        "(gen_random_uuid(), :t, 'b@example.com', 'h', 'member', 'crm-1')"
                    ),
                    {"t": tenant},
                )
            raise AssertionError("two users of a tenant share an external id")
        except IntegrityError:
            pass
    command.downgrade(alembic_config(url, "ragapi_app", unseal=box.open), "0020")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT client_secret FROM identity_providers")).scalar_one() == "plain-secret"
    command.upgrade(alembic_config(url, "ragapi_app", seal=box.seal), "head")
    engine.dispose()
