"""Groups and per-document access, enforced by row-level security.

`groups` (a name unique per tenant) and `group_members` (users) are tenant rows under RLS like every other.

A document is readable by the whole tenant (`readers` NULL, as before) or by the principals listed in
`access` (users, groups, API keys); `readers` is their ids in one array, copied to each of its chunks
(a chunk's readers are set from its document on insert and follow every change of the document's), so
that one predicate, `ragapi_can_read(readers)`, decides for documents, chunks and the query log alike.
It compares them with the transaction's `app.readers`: the request's principal ids (its own, its groups',
or those of the end user a delegating key acts for), or `*` for a view of everything (admins, workers).
An unset or empty `app.readers` reads tenant-wide rows only. The predicate is a restrictive SELECT policy next to
the tenant's, for the application role only: no statement of the application can read past it.

A query-log row cites chunks: it is readable by those who can read all of its restricted ones (the
intersection of their readers, computed when it is written; none left: only a view of everything).

`tenants.access_version` grows with every change of a document's access (and every restricted document
written) and every change of group membership; the answer caches partition by it, so a change stops
cached answers from being served to the views it may have changed on the next request.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from alembic import context, op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
MAX_GROUP_NAME_CHARS = 200  # tenants/groups.py


def _rls(table: str, role: str, grants: str) -> str:
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {table} TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT {grants} ON {table} TO "{role}";
    """


def _readable(table: str, role: str) -> str:
    return f"""
        CREATE POLICY document_access ON {table} AS RESTRICTIVE FOR SELECT TO "{role}"
            USING (ragapi_can_read(readers));
    """


# SQL (not plpgsql), STABLE, SECURITY INVOKER: the planner inlines it into each policy and query.
_CAN_READ = """
CREATE FUNCTION ragapi_can_read(p_readers uuid[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p_readers IS NULL
        OR current_setting('app.readers', true) = '*'
        OR p_readers && NULLIF(NULLIF(current_setting('app.readers', true), '*'), '')::uuid[]
$$;
"""

# Owner functions (SECURITY DEFINER): they must see a document or chunk the writing transaction's own
# view may not (a worker writes for anyone, an admin restricts a document away from itself).
_TRIGGERS = """
CREATE FUNCTION ragapi_bump_access_version(p_tenant uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    UPDATE tenants SET access_version = access_version + 1 WHERE id = p_tenant
$$;
REVOKE EXECUTE ON FUNCTION ragapi_bump_access_version(uuid) FROM PUBLIC;

CREATE FUNCTION ragapi_chunk_readers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    NEW.readers := (SELECT d.readers FROM documents d WHERE d.id = NEW.document_id AND d.tenant_id = NEW.tenant_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER chunks_readers BEFORE INSERT ON chunks FOR EACH ROW EXECUTE FUNCTION ragapi_chunk_readers();

CREATE FUNCTION ragapi_document_access_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE chunks SET readers = NEW.readers WHERE tenant_id = NEW.tenant_id AND document_id = NEW.id;
    END IF;
    PERFORM ragapi_bump_access_version(NEW.tenant_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER documents_access_set AFTER INSERT ON documents FOR EACH ROW
    WHEN (NEW.readers IS NOT NULL) EXECUTE FUNCTION ragapi_document_access_changed();
CREATE TRIGGER documents_access_changed AFTER UPDATE OF readers ON documents FOR EACH ROW
    WHEN (OLD.readers IS DISTINCT FROM NEW.readers) EXECUTE FUNCTION ragapi_document_access_changed();

CREATE FUNCTION ragapi_membership_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    PERFORM ragapi_bump_access_version(coalesce(NEW.tenant_id, OLD.tenant_id));
    RETURN NULL;
END
$$;
CREATE TRIGGER group_members_changed AFTER INSERT OR DELETE ON group_members FOR EACH ROW
    EXECUTE FUNCTION ragapi_membership_changed();

CREATE FUNCTION ragapi_query_log_readers() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    r uuid[];
    acc uuid[];
BEGIN
    FOR r IN SELECT c.readers FROM chunks c
             WHERE c.tenant_id = NEW.tenant_id AND c.id = ANY(NEW.chunk_ids || NEW.cited_chunk_ids)
               AND c.readers IS NOT NULL
    LOOP
        acc := CASE WHEN acc IS NULL THEN r
                    ELSE ARRAY(SELECT unnest(acc) INTERSECT SELECT unnest(r)) END;
    END LOOP;
    NEW.readers := acc;
    RETURN NEW;
END
$$;
CREATE TRIGGER query_log_readers BEFORE INSERT ON query_log FOR EACH ROW
    EXECUTE FUNCTION ragapi_query_log_readers();
"""


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        CREATE TABLE groups (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND {MAX_GROUP_NAME_CHARS}),
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, id),
            UNIQUE (tenant_id, name)
        );
        {_rls("groups", role, "SELECT, INSERT, UPDATE, DELETE")}

        CREATE TABLE group_members (
            tenant_id uuid NOT NULL,
            group_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (group_id, user_id),
            FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
        );
        CREATE INDEX group_members_user ON group_members (user_id);
        {_rls("group_members", role, "SELECT, INSERT, DELETE")}

        ALTER TABLE tenants ADD COLUMN access_version bigint NOT NULL DEFAULT 0;
        ALTER TABLE documents ADD COLUMN access jsonb, ADD COLUMN readers uuid[],
            ADD CONSTRAINT documents_access_readers CHECK ((access IS NULL) = (readers IS NULL));
        ALTER TABLE chunks ADD COLUMN readers uuid[];
        ALTER TABLE query_log ADD COLUMN readers uuid[];
        ALTER TABLE ingest_files ADD COLUMN access jsonb;

        {_CAN_READ}
        {_readable("documents", role)}
        {_readable("chunks", role)}
        {_readable("query_log", role)}
        {_TRIGGERS}
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS query_log_readers ON query_log;
        DROP TRIGGER IF EXISTS documents_access_set ON documents;
        DROP TRIGGER IF EXISTS documents_access_changed ON documents;
        DROP TRIGGER IF EXISTS chunks_readers ON chunks;
        DROP POLICY IF EXISTS document_access ON documents;
        DROP POLICY IF EXISTS document_access ON chunks;
        DROP POLICY IF EXISTS document_access ON query_log;
        DROP TABLE IF EXISTS group_members, groups;
        DROP FUNCTION IF EXISTS ragapi_query_log_readers(), ragapi_membership_changed(),
            ragapi_document_access_changed(), ragapi_chunk_readers(), ragapi_bump_access_version(uuid),
            ragapi_can_read(uuid[]);
        ALTER TABLE ingest_files DROP COLUMN IF EXISTS access;
        ALTER TABLE query_log DROP COLUMN IF EXISTS readers;
        ALTER TABLE chunks DROP COLUMN IF EXISTS readers;
        ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_access_readers,
            DROP COLUMN IF EXISTS access, DROP COLUMN IF EXISTS readers;
        ALTER TABLE tenants DROP COLUMN IF EXISTS access_version;
        """
    )
