"""Vector backends: a knowledge base records where its vectors live; chunk embeddings may live outside.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE knowledge_bases
            ADD COLUMN vector_backend text NOT NULL DEFAULT 'pgvector'
                CHECK (vector_backend IN ('pgvector', 'pinecone'));
        ALTER TABLE chunks ALTER COLUMN embedding DROP NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE knowledge_bases DROP COLUMN IF EXISTS vector_backend;
        """
    )
