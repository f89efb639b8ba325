"""Who a user is elsewhere: users' external ids.

`users.external_id` is the id a client app or the identity provider knows a user by (a CRM's customer
number, an ID token's `sub`): unique in its tenant, optional, never a superadmin's. A delegating key names
its end user by it (`X-On-Behalf-Of`). Row-level security on `users` is unchanged. The length is bounded
here at the largest USER_EXTERNAL_ID_MAX_CHARS may be; the setting bounds what the service accepts.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MAX_EXTERNAL_ID_CHARS = 1000  # the largest USER_EXTERNAL_ID_MAX_CHARS


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE users
            ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND {MAX_EXTERNAL_ID_CHARS}),
            ADD CONSTRAINT users_external_id_in_a_tenant CHECK (external_id IS NULL OR tenant_id IS NOT NULL);
        CREATE UNIQUE INDEX users_external_id ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX IF EXISTS users_external_id;
        ALTER TABLE users DROP CONSTRAINT IF EXISTS users_external_id_in_a_tenant,
            DROP COLUMN IF EXISTS external_id;
        """
    )
