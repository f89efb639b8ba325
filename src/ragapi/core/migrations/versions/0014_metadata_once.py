"""A document's metadata is stored once, on the document, and admission can charge several queries.

Chunks copied their document's metadata (and its file name) into every row, so a few kilobytes of
metadata on a document of a thousand chunks cost megabytes; now a chunk keeps only its own keys (`page`,
`heading`) and filters find a key's documents through a GIN index on `documents.metadata`. Existing
chunks are stripped of the copies here (a rewrite of the chunks table, once).

Row-level security keeps the planner from using that index for the application role (`jsonb @>` is not
leakproof, so it may not run before the policy's check), so the lookup is a SECURITY DEFINER function,
`documents_matching`, pinned to the transaction's tenant (`app.tenant_id`, as the policies are).

`admit_query` gains `p_queries` (default 1): a LangServe batch is admitted as one query per input.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import context, op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CHUNK_KEYS = "ARRAY['page', 'heading']"

_ADMIT = """
CREATE FUNCTION admit_query(
    p_tenant uuid, p_period date, p_query_quota bigint,
    p_version bigint DEFAULT NULL, p_partition text DEFAULT NULL, p_dim int DEFAULT NULL,
    p_query vector DEFAULT NULL, p_limit int DEFAULT 5{queries}
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
        FROM charge_usage(p_tenant, p_period, {charged}, 0, p_query_quota, NULL) c;
END
$$
"""


def _role() -> str:
    return str(context.config.attributes.get("app_role", "ragapi_app")).replace("'", "''")


def _admit(queries: bool) -> str:
    return (
        _ADMIT.replace("{role}", _role())
        .replace("{queries}", ",\n    p_queries bigint DEFAULT 1" if queries else "")
        .replace("{charged}", "p_queries" if queries else "1")
    )


_MATCHING = """
CREATE FUNCTION documents_matching(p_metadata jsonb[]) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT d.id FROM unnest(p_metadata) AS m(value) JOIN documents d ON d.metadata @> m.value
    WHERE d.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;
REVOKE ALL ON FUNCTION documents_matching(jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION documents_matching(jsonb[]) TO "{role}";
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION admit_query(uuid, date, bigint, bigint, text, int, vector, int)")
    op.execute(_admit(queries=True))
    op.execute("CREATE INDEX documents_metadata ON documents USING gin (metadata jsonb_path_ops)")
    op.execute(_MATCHING.replace("{role}", _role().replace('"', '""')))
    op.execute(
        "UPDATE chunks SET metadata = coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(metadata) "
        f"WHERE key = ANY({CHUNK_KEYS})), '{{}}'::jsonb) WHERE metadata - {CHUNK_KEYS} <> '{{}}'::jsonb"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE chunks c SET metadata = d.metadata || c.metadata || CASE WHEN d.source IS NULL THEN '{}'::jsonb "
        "ELSE jsonb_build_object('source', d.source) END FROM documents d WHERE d.id = c.document_id"
    )
    op.execute("DROP FUNCTION IF EXISTS documents_matching(jsonb[])")
    op.execute("DROP INDEX IF EXISTS documents_metadata")
    op.execute("DROP FUNCTION IF EXISTS admit_query(uuid, date, bigint, bigint, text, int, vector, int, bigint)")
    op.execute(_admit(queries=False))
