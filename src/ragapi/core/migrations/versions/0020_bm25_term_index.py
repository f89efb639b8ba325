"""BM25 through an inverted index: each chunk's term keys under GIN, searched by a tenant-pinned function.

`chunks.term_keys` holds one bigint per distinct term of the chunk, scoped to its knowledge base:
the high 32 bits are the first 31 bits of the knowledge base's id, the low 32 the term id
(`ragapi.retrieval.bm25.term_keys`), so a posting list holds one knowledge base's chunks (two knowledge
bases whose ids share 31 bits share posting lists; the rows are still checked, it only costs time).
A GIN index over them finds the chunks that contain a query's rarest terms without reading the
knowledge base; the candidates are then scored exactly with the sparse vectors.

Row-level security keeps the planner from using that index: `&&` is not leakproof, so it may not run
before the policy's predicate and the GIN index cannot serve it. `bm25_candidates` is SECURITY DEFINER
so it can, and enforces the visibility of the row-level security policy itself, from the transaction's
own `app.tenant_id` and `app.readers` (as `tenant_session` sets them): without a tenant it returns
nothing, a knowledge base of another tenant yields no rows, and a chunk of a document the transaction's
view may not read (`ragapi_can_read`, migration 0018) is no candidate.
The application role may execute it; nothing else is granted.

`sparse_term_deltas` takes a write's change to the document frequencies as one row (its terms and their
changes, two arrays) rather than an upsert of every term, which cost 13-17 ms a document; readers add the
pending rows of a knowledge base to `sparse_terms`, and a writer folds them in once there are
`FOLD_EVERY` (ragapi.ingestion.chunk_store), under the knowledge base's lock as every writer.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from alembic import context, op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The key of (knowledge base, term) in SQL, as bm25.term_keys computes it in Python.
_KB_PREFIX = (
    "((('x' || left(replace(c.knowledge_base_id::text, '-', ''), 8))::bit(32)::int & 2147483647)::bigint << 32)"
)

_BACKFILL = f"""
UPDATE chunks c SET term_keys = ARRAY(
    SELECT {_KB_PREFIX} | (m[1])::bigint FROM regexp_matches(c.sparse::text, '(\\d+):', 'g') AS m
);
"""

_FUNCTION = """
CREATE FUNCTION bm25_candidates(p_kb uuid, p_keys bigint[], p_query sparsevec, p_k int, p_budget int)
RETURNS TABLE (id uuid, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    -- the transaction's tenant, as row-level security reads it; none: nothing is visible
    v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
BEGIN
    IF v_tenant IS NULL OR p_budget < 1 OR p_k < 1 THEN
        RETURN;
    END IF;
    -- EXECUTE plans each call for its own knowledge base (a generic plan would suit a small one or a
    -- large one, not both).
    RETURN QUERY EXECUTE $q$
        SELECT c.id, -(c.sparse <#> $3)::double precision AS score
        FROM (
            SELECT c.id, c.sparse FROM chunks c
            WHERE c.term_keys && $2 AND c.knowledge_base_id = $1
              -- VISIBILITY: the row-level security policies of chunks (tenant_isolation and
              -- document_access, migration 0018), applied here because this function runs as the owner.
              -- Any predicate added to those policies must be added here too.
              AND c.tenant_id = $5 AND ragapi_can_read(c.readers)
            LIMIT $4
        ) c
        ORDER BY c.sparse <#> $3
        LIMIT $6
    $q$ USING p_kb, p_keys, p_query, p_budget, v_tenant, p_k;
END
$$;
REVOKE ALL ON FUNCTION bm25_candidates(uuid, bigint[], sparsevec, int, int) FROM PUBLIC;
"""


PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        CREATE TABLE sparse_term_deltas (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id uuid NOT NULL,
            knowledge_base_id uuid NOT NULL,
            terms int[] NOT NULL,
            dfs int[] NOT NULL CHECK (cardinality(dfs) = cardinality(terms)),
            FOREIGN KEY (tenant_id, knowledge_base_id) REFERENCES knowledge_bases (tenant_id, id) ON DELETE CASCADE
        );
        CREATE INDEX sparse_term_deltas_kb ON sparse_term_deltas (knowledge_base_id);
        ALTER TABLE sparse_term_deltas ENABLE ROW LEVEL SECURITY;
        ALTER TABLE sparse_term_deltas FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON sparse_term_deltas TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON sparse_term_deltas TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, DELETE ON sparse_term_deltas TO "{role}";
        """
    )
    op.execute("ALTER TABLE chunks ADD COLUMN term_keys bigint[] NOT NULL DEFAULT '{}'")
    op.execute(_BACKFILL)
    op.execute("CREATE INDEX chunks_term_keys ON chunks USING gin (term_keys)")
    op.execute(_FUNCTION)
    op.execute(f'GRANT EXECUTE ON FUNCTION bm25_candidates(uuid, bigint[], sparsevec, int, int) TO "{role}"')


_FOLD_ALL = """
WITH d AS (
    SELECT p.tenant_id, p.knowledge_base_id, u.term, sum(u.n)::int AS n
    FROM sparse_term_deltas p, unnest(p.terms, p.dfs) AS u(term, n)
    GROUP BY 1, 2, 3
), upd AS (
    UPDATE sparse_terms s SET df = greatest(s.df + d.n, 0) FROM d
    WHERE s.knowledge_base_id = d.knowledge_base_id AND s.term = d.term RETURNING s.knowledge_base_id, s.term
)
INSERT INTO sparse_terms (tenant_id, knowledge_base_id, term, df)
SELECT d.tenant_id, d.knowledge_base_id, d.term, d.n FROM d
WHERE d.n > 0
  AND NOT EXISTS (SELECT 1 FROM upd WHERE upd.knowledge_base_id = d.knowledge_base_id AND upd.term = d.term);
DELETE FROM sparse_terms WHERE df = 0;
"""


def downgrade() -> None:
    op.execute(_FOLD_ALL)
    op.execute("DROP TABLE sparse_term_deltas")
    op.execute("DROP FUNCTION bm25_candidates(uuid, bigint[], sparsevec, int, int)")
    op.execute("DROP INDEX chunks_term_keys")
    op.execute("ALTER TABLE chunks DROP COLUMN term_keys")
