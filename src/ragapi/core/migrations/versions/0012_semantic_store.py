"""Storing a semantic-cache entry as one statement: a function that enters the tenant's scope (the
application role and `app.tenant_id`, as `tenant_session` sets them, so row-level security's WITH CHECK
applies), drops the tenant's entries of older knowledge-base versions and expired ones, and inserts.
Called outside a transaction it is one round trip instead of five (BEGIN, scope, DELETE, INSERT,
COMMIT) after every answered miss; a cache entry is not a record, so it skips the WAL flush.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = str(context.config.attributes.get("app_role", "ragapi_app")).replace("'", "''")
    op.execute(
        f"""
        CREATE FUNCTION semantic_cache_store(
            p_tenant uuid, p_version bigint, p_partition text, p_dim int, p_embedding vector, p_query text,
            p_response jsonb, p_ttl_s double precision
        ) RETURNS void
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        BEGIN
            PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true),
                    set_config('synchronous_commit', 'off', true);
            -- entries of older knowledge-base versions can never match again
            DELETE FROM semantic_cache WHERE tenant_id = p_tenant AND (kb_version < p_version OR expires_at <= now());
            INSERT INTO semantic_cache
                (id, tenant_id, kb_version, partition, embedding_dim, embedding, query, response, expires_at)
            VALUES (gen_random_uuid(), p_tenant, p_version, p_partition, p_dim, p_embedding, p_query, p_response,
                    now() + make_interval(secs => p_ttl_s));
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS semantic_cache_store(uuid, bigint, text, int, vector, text, jsonb, double precision)"
    )
