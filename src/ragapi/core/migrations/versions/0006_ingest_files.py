"""Durable ingestion jobs: one row per file, claimed by workers under a lease.

A file row is the unit of work and of exactly-once: the worker that indexes a document flips its file
row to done in the same transaction, so a crash either leaves both undone or both done.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
JOB_STATUSES = "'queued', 'running', 'succeeded', 'failed', 'partially_failed', 'cancelled'"
FILE_STATUSES = "'queued', 'running', 'created', 'replaced', 'duplicate', 'unchanged', 'failed', 'cancelled'"


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        ALTER TABLE ingest_jobs DROP COLUMN results;
        ALTER TABLE ingest_jobs
            ADD COLUMN files_total int NOT NULL DEFAULT 0,
            ADD COLUMN started_at timestamptz,
            ADD COLUMN error text,
            ADD COLUMN last_claim_at timestamptz,
            ADD CONSTRAINT ingest_jobs_status CHECK (status IN ({JOB_STATUSES}));
        CREATE INDEX ingest_jobs_unfinished ON ingest_jobs (created_at) WHERE finished_at IS NULL;

        CREATE TABLE ingest_files (
            id uuid PRIMARY KEY,
            job_id uuid NOT NULL REFERENCES ingest_jobs (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            ord int NOT NULL,
            filename text,
            content_type text,
            title text,
            metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            external_id text,
            url text,
            size_bytes bigint NOT NULL DEFAULT 0,
            blob_key text,
            status text NOT NULL DEFAULT 'queued' CHECK (status IN ({FILE_STATUSES})),
            attempts int NOT NULL DEFAULT 0,
            not_before timestamptz NOT NULL DEFAULT now(),
            claimed_by text,
            lease_until timestamptz,
            document_id uuid,
            chunks int NOT NULL DEFAULT 0,
            error jsonb,
            started_at timestamptz,
            finished_at timestamptz,
            UNIQUE (job_id, ord)
        );
        CREATE INDEX ingest_files_pending ON ingest_files (not_before) WHERE status IN ('queued', 'running');
        ALTER TABLE ingest_files ENABLE ROW LEVEL SECURITY;
        ALTER TABLE ingest_files FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON ingest_files TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON ingest_files TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, UPDATE ON ingest_files TO "{role}";
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS ingest_files;
        DROP INDEX IF EXISTS ingest_jobs_unfinished;
        ALTER TABLE ingest_jobs DROP CONSTRAINT IF EXISTS ingest_jobs_status,
            DROP COLUMN IF EXISTS files_total, DROP COLUMN IF EXISTS started_at,
            DROP COLUMN IF EXISTS error, DROP COLUMN IF EXISTS last_claim_at,
            ADD COLUMN IF NOT EXISTS results jsonb NOT NULL DEFAULT '[]'::jsonb;
        """
    )
