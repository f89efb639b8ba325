"""Users, login sessions, tenant plans and usage; API keys get a rate limit and become tenant-manageable.

Users and usage rows are tenant rows under RLS like every other; superadmins have no tenant
(tenant_id NULL), so no tenant session can ever see them. Login sessions are reached only by the
authentication code (owner role): the application role gets no grant on them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def _rls(table: str, role: str, grants: str) -> str:
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {table} TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT {grants} ON {table} TO "{role}";
    """


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        ALTER TABLE tenants
            ADD COLUMN plan text NOT NULL DEFAULT 'default' CHECK (length(plan) BETWEEN 1 AND 100),
            ADD COLUMN rate_limit_per_minute int CHECK (rate_limit_per_minute > 0),
            ADD COLUMN monthly_query_quota bigint CHECK (monthly_query_quota >= 0),
            ADD COLUMN monthly_ingest_bytes_quota bigint CHECK (monthly_ingest_bytes_quota >= 0),
            ADD COLUMN max_document_bytes bigint CHECK (max_document_bytes > 0),
            ADD COLUMN allow_registration boolean NOT NULL DEFAULT false,
            ADD COLUMN registration_role text NOT NULL DEFAULT 'readonly'
                CHECK (registration_role IN ('member', 'readonly'));

        ALTER TABLE api_keys
            ADD COLUMN rate_limit_per_minute int CHECK (rate_limit_per_minute > 0),
            ADD COLUMN created_by uuid,
            ADD CONSTRAINT api_keys_name_length CHECK (length(name) BETWEEN 1 AND 200);
        GRANT INSERT, UPDATE ON api_keys TO "{role}";

        CREATE TABLE users (
            id uuid PRIMARY KEY,
            tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
            email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(email)),
            password_hash text NOT NULL,
            role text NOT NULL CHECK (role IN ('superadmin', 'admin', 'member', 'readonly')),
            is_active boolean NOT NULL DEFAULT true,
            token_version int NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            password_changed_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((role = 'superadmin') = (tenant_id IS NULL))
        );
        CREATE UNIQUE INDEX users_email ON users (email);
        CREATE INDEX users_tenant ON users (tenant_id);
        {_rls("users", role, "SELECT, INSERT, UPDATE")}

        CREATE TABLE auth_sessions (
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            refresh_jti uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
        ALTER TABLE auth_sessions ENABLE ROW LEVEL SECURITY;
        ALTER TABLE auth_sessions FORCE ROW LEVEL SECURITY;
        CREATE POLICY owner_access ON auth_sessions TO CURRENT_USER USING (true) WITH CHECK (true);

        CREATE TABLE tenant_usage (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            period date NOT NULL,
            queries bigint NOT NULL DEFAULT 0 CHECK (queries >= 0),
            ingest_bytes bigint NOT NULL DEFAULT 0 CHECK (ingest_bytes >= 0),
            PRIMARY KEY (tenant_id, period)
        );
        {_rls("tenant_usage", role, "SELECT, INSERT, UPDATE")}
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS tenant_usage, auth_sessions, users;
        ALTER TABLE api_keys DROP COLUMN IF EXISTS rate_limit_per_minute, DROP COLUMN IF EXISTS created_by,
            DROP CONSTRAINT IF EXISTS api_keys_name_length;
        ALTER TABLE tenants DROP COLUMN IF EXISTS plan, DROP COLUMN IF EXISTS rate_limit_per_minute,
            DROP COLUMN IF EXISTS monthly_query_quota, DROP COLUMN IF EXISTS monthly_ingest_bytes_quota,
            DROP COLUMN IF EXISTS max_document_bytes, DROP COLUMN IF EXISTS allow_registration,
            DROP COLUMN IF EXISTS registration_role;
        """
    )
