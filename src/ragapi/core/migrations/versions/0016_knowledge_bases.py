"""Several knowledge bases per tenant.

A knowledge base gets its own id, a name unique among the tenant's live ones, a description and its own
retrieval settings; documents, chunks, BM25 statistics and ingest jobs name the one they belong to, and
the BM25 statistics are kept per knowledge base. The tenant's existing knowledge base becomes its
`default`, whose id is the tenant's id: requests that name none use it, and vector records written to an
external index before this migration (which carry no knowledge-base id) can only be its.

`cache_scope` and `admit_query` take the knowledge bases a question names (ids or names; NULL: the
default, if there is one yet) and the ones its credential may use (NULL: all);
they return the ones found, in the order named, and the names not found, and charge nothing when any is
missing. Semantic-cache entries record the knowledge bases they answer from, so storing one clears only
the older versions of the same set, and deleting a knowledge base clears its entries.

A knowledge base being deleted (`status` deleting) is invisible to questions and ingestion while its
documents are removed; `deletion` records how many there were when the deletion began (its progress).

API keys may be restricted to some knowledge bases (`knowledge_base_ids`, NULL: all); the query log
records the knowledge bases each question searched.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import context, op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_SCHEMA = """
ALTER TABLE knowledge_bases DROP CONSTRAINT knowledge_bases_pkey;
ALTER TABLE knowledge_bases
    ADD COLUMN id uuid,
    ADD COLUMN name text,
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN status text NOT NULL DEFAULT 'active',
    ADD COLUMN deletion jsonb,
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
UPDATE knowledge_bases SET id = tenant_id, name = 'default', created_at = updated_at;
ALTER TABLE knowledge_bases
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN name SET NOT NULL,
    ADD PRIMARY KEY (id),
    ADD CONSTRAINT knowledge_bases_tenant_id UNIQUE (tenant_id, id),
    ADD CONSTRAINT knowledge_bases_name_length CHECK (length(name) BETWEEN 1 AND 100),
    ADD CONSTRAINT knowledge_bases_description_length CHECK (length(description) <= 2000),
    ADD CONSTRAINT knowledge_bases_status CHECK (status IN ('active', 'deleting'));
CREATE UNIQUE INDEX knowledge_bases_name ON knowledge_bases (tenant_id, name) WHERE status = 'active';

ALTER TABLE documents ADD COLUMN knowledge_base_id uuid;
UPDATE documents SET knowledge_base_id = tenant_id;
ALTER TABLE documents
    ALTER COLUMN knowledge_base_id SET NOT NULL,
    ADD CONSTRAINT documents_knowledge_base FOREIGN KEY (tenant_id, knowledge_base_id)
        REFERENCES knowledge_bases (tenant_id, id) ON DELETE CASCADE,
    DROP CONSTRAINT documents_tenant_id_content_hash_key,
    DROP CONSTRAINT documents_tenant_id_external_id_key,
    ADD CONSTRAINT documents_kb_content_hash UNIQUE (knowledge_base_id, content_hash),
    ADD CONSTRAINT documents_kb_external_id UNIQUE (knowledge_base_id, external_id);
CREATE INDEX documents_kb_created ON documents (knowledge_base_id, created_at DESC, id DESC);

ALTER TABLE chunks ADD COLUMN knowledge_base_id uuid;
UPDATE chunks SET knowledge_base_id = tenant_id;
ALTER TABLE chunks ALTER COLUMN knowledge_base_id SET NOT NULL;
CREATE INDEX chunks_knowledge_base ON chunks (knowledge_base_id);

ALTER TABLE sparse_terms ADD COLUMN knowledge_base_id uuid;
UPDATE sparse_terms SET knowledge_base_id = tenant_id;
ALTER TABLE sparse_terms
    ALTER COLUMN knowledge_base_id SET NOT NULL,
    DROP CONSTRAINT sparse_terms_pkey,
    ADD PRIMARY KEY (knowledge_base_id, term);

ALTER TABLE ingest_jobs ADD COLUMN knowledge_base_id uuid;
UPDATE ingest_jobs SET knowledge_base_id = tenant_id;
ALTER TABLE ingest_jobs ALTER COLUMN knowledge_base_id SET NOT NULL;

ALTER TABLE api_keys ADD COLUMN knowledge_base_ids uuid[];
ALTER TABLE query_log ADD COLUMN knowledge_base_ids uuid[] NOT NULL DEFAULT '{}';
UPDATE query_log SET knowledge_base_ids = ARRAY[tenant_id];

DELETE FROM semantic_cache;
ALTER TABLE semantic_cache ADD COLUMN knowledge_base_ids uuid[] NOT NULL;
"""

_FUNCTIONS = """
CREATE FUNCTION knowledge_base_scope(p_tenant uuid, p_refs text[], p_allowed uuid[]) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT CASE WHEN p_refs IS NULL THEN (
        SELECT jsonb_build_object(
            'found', coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.created_at, k.id), '[]'::jsonb),
            'missing', '[]'::jsonb)
        FROM knowledge_bases k
        WHERE k.tenant_id = p_tenant AND k.status = 'active' AND k.id = p_tenant
          AND (p_allowed IS NULL OR k.id = ANY(p_allowed))
    ) ELSE (
        SELECT jsonb_build_object(
            'found', coalesce(jsonb_agg(to_jsonb(k) ORDER BY r.n) FILTER (WHERE k.id IS NOT NULL), '[]'::jsonb),
            'missing', coalesce(jsonb_agg(r.ref ORDER BY r.n) FILTER (WHERE k.id IS NULL), '[]'::jsonb))
        FROM unnest(p_refs) WITH ORDINALITY AS r(ref, n)
        LEFT JOIN knowledge_bases k
          ON k.tenant_id = p_tenant AND k.status = 'active' AND (k.id::text = r.ref OR k.name = r.ref)
         AND (p_allowed IS NULL OR k.id = ANY(p_allowed))
    ) END
$$;

CREATE FUNCTION cache_scope(p_tenant uuid, p_refs text[], p_allowed uuid[]) RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT jsonb_build_object(
        'cache_enabled', t.cache_enabled,
        'semantic_cache_threshold', t.semantic_cache_threshold,
        'knowledge_bases', knowledge_base_scope(p_tenant, p_refs, p_allowed)
    )
    FROM tenants t WHERE t.id = p_tenant
$$;

CREATE FUNCTION admit_query(
    p_tenant uuid, p_period date, p_query_quota bigint,
    p_version bigint DEFAULT NULL, p_partition text DEFAULT NULL, p_dim int DEFAULT NULL,
    p_query vector DEFAULT NULL, p_limit int DEFAULT 5, p_queries bigint DEFAULT 1,
    p_refs text[] DEFAULT NULL, p_allowed uuid[] DEFAULT NULL
) RETURNS TABLE (queries bigint, ingest_bytes bigint, scope jsonb, nearest jsonb)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_scope jsonb;
    v_nearest jsonb;
    v_version bigint;
BEGIN
    PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true),
            set_config('synchronous_commit', 'off', true);
    v_scope := cache_scope(p_tenant, p_refs, p_allowed);
    IF jsonb_array_length(v_scope->'knowledge_bases'->'missing') > 0 THEN
        -- a knowledge base that is not there (or not this credential's): nothing charged
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, v_scope, NULL::jsonb;
        RETURN;
    END IF;
    SELECT coalesce(sum((k->>'version')::bigint), 0) INTO v_version
    FROM jsonb_array_elements(v_scope->'knowledge_bases'->'found') k;
    IF p_query IS NOT NULL AND (v_scope->>'cache_enabled')::boolean AND v_version = p_version THEN
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
        FROM charge_usage(p_tenant, p_period, p_queries, 0, p_query_quota, NULL) c;
END
$$;

CREATE FUNCTION semantic_cache_store(
    p_tenant uuid, p_knowledge_bases uuid[], p_version bigint, p_partition text, p_dim int, p_embedding vector,
    p_query text, p_response jsonb, p_ttl_s double precision
) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('role', '{role}', true), set_config('app.tenant_id', p_tenant::text, true),
            set_config('synchronous_commit', 'off', true);
    -- entries of older versions of the same knowledge bases can never match again
    DELETE FROM semantic_cache
    WHERE tenant_id = p_tenant
      AND ((knowledge_base_ids = p_knowledge_bases AND kb_version < p_version) OR expires_at <= now());
    INSERT INTO semantic_cache
        (id, tenant_id, knowledge_base_ids, kb_version, partition, embedding_dim, embedding, query, response,
         expires_at)
    VALUES (gen_random_uuid(), p_tenant, p_knowledge_bases, p_version, p_partition, p_dim, p_embedding, p_query,
            p_response, now() + make_interval(secs => p_ttl_s));
END
$$;
"""

_DROP_OLD = """
DROP FUNCTION admit_query(uuid, date, bigint, bigint, text, int, vector, int, bigint);
DROP FUNCTION cache_scope(uuid);
DROP FUNCTION semantic_cache_store(uuid, bigint, text, int, vector, text, jsonb, double precision);
"""


def _role() -> str:
    return str(context.config.attributes.get("app_role", "ragapi_app"))


def upgrade() -> None:
    role = _role()
    op.execute(_DROP_OLD)
    op.execute(_SCHEMA)
    op.execute(f'GRANT DELETE ON knowledge_bases TO "{role}"')
    op.execute(_FUNCTIONS.replace("{role}", role.replace("'", "''")))


_UNDO_SCHEMA = """
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM knowledge_bases WHERE id <> tenant_id) THEN
        RAISE EXCEPTION 'a tenant has knowledge bases besides its default: they cannot be merged back';
    END IF;
END $$;
DROP FUNCTION admit_query(uuid, date, bigint, bigint, text, int, vector, int, bigint, text[], uuid[]);
DROP FUNCTION cache_scope(uuid, text[], uuid[]);
DROP FUNCTION knowledge_base_scope(uuid, text[], uuid[]);
DROP FUNCTION semantic_cache_store(uuid, uuid[], bigint, text, int, vector, text, jsonb, double precision);
DELETE FROM semantic_cache;
ALTER TABLE semantic_cache DROP COLUMN knowledge_base_ids;
ALTER TABLE query_log DROP COLUMN knowledge_base_ids;
ALTER TABLE api_keys DROP COLUMN knowledge_base_ids;
ALTER TABLE ingest_jobs DROP COLUMN knowledge_base_id;
ALTER TABLE sparse_terms DROP CONSTRAINT sparse_terms_pkey, ADD PRIMARY KEY (tenant_id, term);
ALTER TABLE sparse_terms DROP COLUMN knowledge_base_id;
ALTER TABLE chunks DROP COLUMN knowledge_base_id;
ALTER TABLE documents
    DROP CONSTRAINT documents_knowledge_base,
    DROP CONSTRAINT documents_kb_content_hash,
    DROP CONSTRAINT documents_kb_external_id,
    ADD CONSTRAINT documents_tenant_id_content_hash_key UNIQUE (tenant_id, content_hash),
    ADD CONSTRAINT documents_tenant_id_external_id_key UNIQUE (tenant_id, external_id);
ALTER TABLE documents DROP COLUMN knowledge_base_id;
DROP INDEX knowledge_bases_name;
ALTER TABLE knowledge_bases
    DROP CONSTRAINT knowledge_bases_pkey,
    DROP CONSTRAINT knowledge_bases_tenant_id,
    DROP COLUMN id, DROP COLUMN name, DROP COLUMN description, DROP COLUMN settings, DROP COLUMN status,
    DROP COLUMN deletion, DROP COLUMN created_at,
    ADD PRIMARY KEY (tenant_id);
"""


def _revision(name: str) -> ModuleType:
    """An earlier migration of this directory, for the functions it created."""
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"ragapi_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this directory
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    """Back to one knowledge base per tenant; refused while any tenant has another."""
    role = _role()
    op.execute(_UNDO_SCHEMA)
    op.execute(f'REVOKE DELETE ON knowledge_bases FROM "{role}"')
    # as 0010 created it (that migration also creates functions that still exist, so it is not rerun)
    op.execute(
        """
        CREATE FUNCTION cache_scope(p_tenant uuid) RETURNS jsonb
        LANGUAGE sql STABLE SECURITY INVOKER AS $$
            SELECT jsonb_build_object(
                'cache_enabled', t.cache_enabled,
                'semantic_cache_threshold', t.semantic_cache_threshold,
                'knowledge_base', to_jsonb(k)
            )
            FROM tenants t LEFT JOIN knowledge_bases k ON k.tenant_id = t.id
            WHERE t.id = p_tenant
        $$
        """
    )
    op.execute(_revision("0014_metadata_once.py")._admit(queries=True))
    _revision("0012_semantic_store.py").upgrade()
