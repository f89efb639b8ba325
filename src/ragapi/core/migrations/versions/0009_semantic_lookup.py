"""The semantic cache's lookup as one statement: a function that enters the tenant's scope (the
application role and `app.tenant_id`, both local to the statement's transaction, as `tenant_session`
sets them) and then searches, so row-level security still applies. Called outside a transaction it is
one round trip instead of four (BEGIN, scope, search, COMMIT), and under load each round trip waits for
a turn of a busy event loop.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import context, op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app").replace("'", "''")
    op.execute(
        f"""
        CREATE FUNCTION semantic_cache_nearest(
            p_tenant uuid, p_partition text, p_dim int, p_query vector, p_limit int
        ) RETURNS TABLE (query text, response jsonb, similarity double precision, expires_in double precision)
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        BEGIN
            PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true);
            RETURN QUERY
                SELECT c.query, c.response, 1 - (c.embedding <=> p_query),
                       extract(epoch FROM c.expires_at - now())::double precision
                FROM semantic_cache c
                WHERE c.tenant_id = p_tenant AND c.partition = p_partition AND c.embedding_dim = p_dim
                  AND c.expires_at > now()
                ORDER BY c.embedding <=> p_query
                LIMIT p_limit;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS semantic_cache_nearest(uuid, text, int, vector, int)")
