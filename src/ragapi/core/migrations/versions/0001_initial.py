"""Initial schema: tenants, keys, knowledge bases, documents, chunks, sparse stats, jobs; RLS everywhere.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Tables holding tenant-owned rows, with the column that names the tenant.
TENANT_TABLES = {
    "tenants": "id",
    "api_keys": "tenant_id",
    "knowledge_bases": "tenant_id",
    "documents": "tenant_id",
    "chunks": "tenant_id",
    "sparse_terms": "tenant_id",
    "ingest_jobs": "tenant_id",
}

APP_GRANTS = {
    "tenants": "SELECT",
    "api_keys": "SELECT",
    "knowledge_bases": "SELECT, INSERT, UPDATE",
    "documents": "SELECT, INSERT, UPDATE, DELETE",
    "chunks": "SELECT, INSERT, UPDATE, DELETE",
    "sparse_terms": "SELECT, INSERT, UPDATE, DELETE",
    "ingest_jobs": "SELECT, INSERT, UPDATE",
}

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    prefix text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE knowledge_bases (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    embedding_model text NOT NULL,
    embedding_dim int NOT NULL CHECK (embedding_dim > 0),
    chunk_count bigint NOT NULL DEFAULT 0,
    token_count bigint NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    external_id text,
    title text NOT NULL,
    source text,
    content_type text NOT NULL,
    content_hash text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    chunk_count int NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, content_hash),
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX documents_tenant_created ON documents (tenant_id, created_at DESC, id DESC);

CREATE TABLE chunks (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    document_id uuid NOT NULL,
    ord int NOT NULL,
    text text NOT NULL,
    title text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding_model text NOT NULL,
    embedding_dim int NOT NULL,
    embedding vector NOT NULL,
    sparse sparsevec NOT NULL,
    token_count int NOT NULL,
    UNIQUE (document_id, ord),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chunks_tenant ON chunks (tenant_id);
CREATE INDEX chunks_metadata ON chunks USING gin (metadata jsonb_path_ops);

CREATE TABLE sparse_terms (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    term int NOT NULL,
    df int NOT NULL CHECK (df >= 0),
    PRIMARY KEY (tenant_id, term)
);

CREATE TABLE ingest_jobs (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    results jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX ingest_jobs_tenant ON ingest_jobs (tenant_id, created_at DESC);
"""


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "ragapi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid application role name: {role!r}")
    return str(role)


def upgrade() -> None:
    role = _app_role()
    op.execute(SCHEMA)
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        END $$;
        GRANT "{role}" TO CURRENT_USER;
        GRANT USAGE ON SCHEMA public TO "{role}";
        """
    )
    for table, column in TENANT_TABLES.items():
        predicate = f"{column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
        op.execute(
            f"""
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON {table} TO "{role}" USING ({predicate}) WITH CHECK ({predicate});
            CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true) WITH CHECK (true);
            GRANT {APP_GRANTS[table]} ON {table} TO "{role}";
            """
        )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS ingest_jobs, sparse_terms, chunks, documents, knowledge_bases, api_keys, tenants;
        """
    )
