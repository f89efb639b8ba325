"""Admission as one statement. `charge_usage` is the quota charge (one upsert whose WHERE refuses to pass
a quota, so concurrent requests never overspend), `cache_scope` what the answer cache needs to know about
a tenant, and `admit_query` enters the tenant's scope (application role, `app.tenant_id`, no wait for the
WAL flush: usage is a counter, not a record) and does both. Called outside a transaction it is one round
trip instead of five (BEGIN, scope, cache scope, charge, COMMIT) for every query.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app").replace("'", "''")
    op.execute(
        """
        CREATE FUNCTION charge_usage(
            p_tenant uuid, p_period date, p_queries bigint, p_bytes bigint, p_query_quota bigint, p_bytes_quota bigint
        ) RETURNS TABLE (queries bigint, ingest_bytes bigint)
        LANGUAGE sql SECURITY INVOKER AS $$
            INSERT INTO tenant_usage AS u (tenant_id, period, queries, ingest_bytes)
            VALUES (p_tenant, p_period, p_queries, p_bytes)
            ON CONFLICT (tenant_id, period) DO UPDATE
                SET queries = u.queries + EXCLUDED.queries, ingest_bytes = u.ingest_bytes + EXCLUDED.ingest_bytes
                WHERE (p_query_quota IS NULL OR u.queries + EXCLUDED.queries <= p_query_quota)
                  AND (p_bytes_quota IS NULL OR u.ingest_bytes + EXCLUDED.ingest_bytes <= p_bytes_quota)
            RETURNING u.queries, u.ingest_bytes
        $$;

        CREATE FUNCTION cache_scope(p_tenant uuid) RETURNS jsonb
        LANGUAGE sql STABLE SECURITY INVOKER AS $$
            SELECT jsonb_build_object(
                'cache_enabled', t.cache_enabled,
                'semantic_cache_threshold', t.semantic_cache_threshold,
                'knowledge_base', to_jsonb(k)
            )
            FROM tenants t LEFT JOIN knowledge_bases k ON k.tenant_id = t.id
            WHERE t.id = p_tenant
        $$;
        """
    )
    op.execute(
        f"""
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
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS admit_query(uuid, date, bigint);
        DROP FUNCTION IF EXISTS cache_scope(uuid);
        DROP FUNCTION IF EXISTS charge_usage(uuid, date, bigint, bigint, bigint, bigint);
        """
    )
