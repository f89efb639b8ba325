"""Admission can also search the semantic cache, so a semantic hit (or a miss) costs one round trip less.

`admit_query` gains the search's arguments: the knowledge-base version the caller built its partition
with, the partition, and the query vector. After the charge, and only if the tenant's cache is on and
that version is still the knowledge base's, it returns the partition's nearest entries as `nearest`
(NULL when it did not search: no vector given, cache off, or the version moved on). Row-level security
applies as before: the function runs the search as the application role in the tenant's scope.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD = """
CREATE FUNCTION admit_query(p_tenant uuid, p_period date, p_query_quota bigint)
RETURNS TABLE (queries bigint, ingest_bytes bigint, scope jsonb)
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true),
            set_config('synchronous_commit', 'off', true);
    RETURN QUERY
        SELECT c.queries, c.ingest_bytes, cache_scope(p_tenant)
        FROM charge_usage(p_tenant, p_period, 1, 0, p_query_quota, NULL) c;
END
$$
"""

_NEW = """
CREATE FUNCTION admit_query(
    p_tenant uuid, p_period date, p_query_quota bigint,
    p_version bigint DEFAULT NULL, p_partition text DEFAULT NULL, p_dim int DEFAULT NULL,
    p_query vector DEFAULT NULL, p_limit int DEFAULT 5
) RETURNS TABLE (queries bigint, ingest_bytes bigint, scope jsonb, nearest jsonb)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_scope jsonb;
    v_nearest jsonb;
BEGIN
    PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true),
            set_config('synchronous_commit', 'off', true);
    v_scope := cache_scope(p_tenant);
    IF p_query IS NOT NULL AND (v_scope->>'cache_enabled')::boolean
       AND coalesce((v_scope->'knowledge_base'->>'version')::bigint, 0) = p_version THEN
        SELECT coalesce(jsonb_agg(to_jsonb(n)), '[]'::jsonb) INTO v_nearest FROM (
            SELECT e.query, e.response, 1 - (e.embedding <=> p_query) AS similarity,
                   extract(epoch FROM e.expires_at - now())::double precision AS expires_in
            FROM semantic_cache e
            WHERE e.tenant_id = p_tenant AND e.partition = p_partition AND e.embedding_dim = p_dim
              AND e.expires_at > now()
            ORDER BY e.embedding <=> p_query
            LIMIT p_limit
        ) n;
    END IF;
    -- the charge last: the tenant's usage row, on which its queries queue, stays locked the shortest
    RETURN QUERY
        SELECT c.queries, c.ingest_bytes, v_scope, v_nearest
        FROM charge_usage(p_tenant, p_period, 1, 0, p_query_quota, NULL) c;
END
$$
"""


def _role() -> str:
    return str(context.config.attributes.get("app_role", "ragapi_app")).replace("'", "''")


def upgrade() -> None:
    op.execute("DROP FUNCTION admit_query(uuid, date, bigint)")
    op.execute(_NEW.replace("{role}", _role()))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS admit_query(uuid, date, bigint, bigint, text, int, vector, int)")
    op.execute(_OLD.replace("{role}", _role()))
