"""Re-embedding a knowledge base: a second vector per chunk, filled while the first keeps serving.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE chunks ADD COLUMN embedding_next vector, ADD COLUMN embedding_next_model text;
        ALTER TABLE knowledge_bases ADD COLUMN reembedding_to text;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE chunks DROP COLUMN IF EXISTS embedding_next, DROP COLUMN IF EXISTS embedding_next_model;
        ALTER TABLE knowledge_bases DROP COLUMN IF EXISTS reembedding_to;
        """
    )
