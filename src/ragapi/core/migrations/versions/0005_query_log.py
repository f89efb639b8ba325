"""Query log and feedback: one row per answered (or failed) query, one feedback per person per query.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def _rls(table: str, role: str, grants: str) -> str:
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {table} TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT {grants} ON {table} TO "{role}";
    """


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        CREATE TABLE query_log (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            principal_kind text NOT NULL CHECK (principal_kind IN ('key', 'user')),
            principal_id uuid NOT NULL,
            surface text NOT NULL,
            request_id text,
            created_at timestamptz NOT NULL,
            status text NOT NULL CHECK (status IN ('ok', 'error')),
            error_status int,
            cache text NOT NULL CHECK (cache IN ('none', 'exact', 'semantic')),
            query text,
            embed_ms real, retrieve_ms real, rerank_ms real, generate_ms real, total_ms real,
            sources int NOT NULL DEFAULT 0,
            top_score real,
            chunk_ids uuid[] NOT NULL DEFAULT '{{}}',
            cited_chunk_ids uuid[] NOT NULL DEFAULT '{{}}',
            model text,
            prompt_tokens int NOT NULL DEFAULT 0,
            completion_tokens int NOT NULL DEFAULT 0,
            embedding_tokens int NOT NULL DEFAULT 0,
            tokens_estimated boolean NOT NULL DEFAULT false,
            cost_usd double precision NOT NULL DEFAULT 0
        );
        CREATE INDEX query_log_tenant_time ON query_log (tenant_id, created_at);
        CREATE INDEX query_log_time ON query_log (created_at);
        {_rls("query_log", role, "SELECT")}

        CREATE TABLE feedback (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            query_id uuid NOT NULL REFERENCES query_log (id) ON DELETE CASCADE,
            principal_kind text NOT NULL,
            principal_id uuid NOT NULL,
            score real NOT NULL CHECK (score BETWEEN 0 AND 1),
            comment text CHECK (length(comment) <= 4000),
            chunk_ids uuid[] NOT NULL DEFAULT '{{}}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (query_id, principal_kind, principal_id)
        );
        CREATE INDEX feedback_tenant_time ON feedback (tenant_id, created_at);
        {_rls("feedback", role, "SELECT, INSERT, UPDATE")}
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS feedback, query_log;")
