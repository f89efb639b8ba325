"""Conversations: a principal's multi-turn questions and the answers they got.

`conversations` belongs to the principal that made it (an API key, a user, or the operator); its
`message_count` numbers the messages and bounds them (CONVERSATION_MAX_MESSAGES). `conversation_messages`
holds the turns in order: a user message with the standalone question that was searched and how it was
made, an assistant message with its `query_id` (the query log's id, which feedback takes), citations, mode,
model and usage. No foreign key to `query_log`: it is written in batches after the answer, and purged on
its own retention. Row-level security as on every tenant table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import context, op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
MAX_KNOWLEDGE_BASES = 20  # answering/conversations/models.py
MAX_TITLE_CHARS = 200


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
        CREATE TABLE conversations (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            owner_kind text NOT NULL CHECK (owner_kind IN ('key', 'user', 'operator')),
            owner_id uuid NOT NULL,
            title text CHECK (length(title) BETWEEN 1 AND {MAX_TITLE_CHARS}),
            knowledge_bases text[] NOT NULL DEFAULT '{{}}'
                CHECK (cardinality(knowledge_bases) <= {MAX_KNOWLEDGE_BASES}),
            message_count int NOT NULL DEFAULT 0 CHECK (message_count >= 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, id)
        );
        CREATE INDEX conversations_owner
            ON conversations (tenant_id, owner_kind, owner_id, created_at DESC, id DESC);
        CREATE INDEX conversations_updated ON conversations (updated_at);
        {_rls("conversations", role, "SELECT, INSERT, UPDATE, DELETE")}

        CREATE TABLE conversation_messages (
            tenant_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            ord int NOT NULL CHECK (ord >= 0),
            role text NOT NULL CHECK (role IN ('user', 'assistant')),
            content text NOT NULL,
            standalone_question text,
            rewrite text,
            query_id uuid,
            citations jsonb NOT NULL DEFAULT '[]',
            mode text,
            model text,
            usage jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, conversation_id, ord),
            FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
            CHECK ((role = 'user') = (standalone_question IS NOT NULL)),
            CHECK ((role = 'assistant') = (query_id IS NOT NULL))
        );
        {_rls("conversation_messages", role, "SELECT, INSERT, DELETE")}
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS conversation_messages, conversations;")
