"""The query log records the operator's questions too (`ragapi query`, principal kind `operator`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE query_log DROP CONSTRAINT query_log_principal_kind_check;
        ALTER TABLE query_log ADD CONSTRAINT query_log_principal_kind_check
            CHECK (principal_kind IN ('key', 'user', 'operator'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM query_log WHERE principal_kind = 'operator';
        ALTER TABLE query_log DROP CONSTRAINT query_log_principal_kind_check;
        ALTER TABLE query_log ADD CONSTRAINT query_log_principal_kind_check
            CHECK (principal_kind IN ('key', 'user'));
        """
    )
