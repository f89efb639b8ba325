"""How many characters PostgreSQL cannot store (NUL, lone surrogates) were removed from a file's text.

Text extracted from uploads loses those characters instead of failing the file; the count is kept with
the file's outcome so the job API can report it. The table's row-level security and grants cover the
new column.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest_files ADD COLUMN removed_characters int NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest_files DROP COLUMN IF EXISTS removed_characters")
