"""Answer cache: per-tenant cache switches and the semantic cache table (RLS like every tenant table).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    predicate = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
    op.execute(
        f"""
        ALTER TABLE tenants
            ADD COLUMN cache_enabled boolean NOT NULL DEFAULT true,
            ADD COLUMN semantic_cache_threshold real CHECK (semantic_cache_threshold BETWEEN 0.8 AND 1.0);

        CREATE TABLE semantic_cache (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            kb_version bigint NOT NULL,
            partition text NOT NULL,
            embedding_dim int NOT NULL,
            embedding vector NOT NULL,
            query text NOT NULL,
            response jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX semantic_cache_partition ON semantic_cache (tenant_id, partition);
        ALTER TABLE semantic_cache ENABLE ROW LEVEL SECURITY;
        ALTER TABLE semantic_cache FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON semantic_cache TO "{role}" USING ({predicate}) WITH CHECK ({predicate});
        CREATE POLICY owner_access ON semantic_cache TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, DELETE ON semantic_cache TO "{role}";
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS semantic_cache;
        ALTER TABLE tenants DROP COLUMN IF EXISTS cache_enabled, DROP COLUMN IF EXISTS semantic_cache_threshold;
        """
    )
