"""Single sign-on: a tenant's OpenID Connect identity provider, sign-ins in progress, and users from it.

`identity_providers` holds at most one provider per tenant (issuer, client and how it authenticates at the
token endpoint, the e-mail domains it may sign in, the claim carrying groups, scopes, the role of users it
creates); row-level security as on every
tenant table. `oidc_logins` holds sign-ins started and not yet finished: the hashes of the `state` sent to
the provider and of the browser-binding cookie, the nonce and the PKCE verifier; a callback deletes its
row, so a state works once. Like `auth_sessions` it is reached only by the authentication code (owner
role).

A user may now come from the provider alone: `password_hash` becomes optional, and `oidc_issuer` and
`oidc_subject` name the provider's account (unique per tenant) a user signs in as.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import context, op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "ragapi_app")
    op.execute(
        f"""
        ALTER TABLE users
            ALTER COLUMN password_hash DROP NOT NULL,
            ADD COLUMN oidc_issuer text CHECK (length(oidc_issuer) <= 2000),
            ADD COLUMN oidc_subject text CHECK (length(oidc_subject) <= 255),
            ADD CONSTRAINT users_oidc_account CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)),
            ADD CONSTRAINT users_can_sign_in CHECK (password_hash IS NOT NULL OR oidc_subject IS NOT NULL);
        CREATE UNIQUE INDEX users_oidc_account ON users (tenant_id, oidc_issuer, oidc_subject)
            WHERE oidc_subject IS NOT NULL;

        CREATE TABLE identity_providers (
            tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
            issuer text NOT NULL CHECK (length(issuer) BETWEEN 8 AND 2000),
            client_id text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 500),
            client_secret text CHECK (length(client_secret) BETWEEN 1 AND 2000),
            token_auth_method text CHECK (token_auth_method IN ('client_secret_basic', 'client_secret_post')),
            allowed_domains text[] NOT NULL DEFAULT '{{}}',
            groups_claim text CHECK (length(groups_claim) BETWEEN 1 AND 100),
            scopes text[] NOT NULL DEFAULT '{{openid,email,profile}}',
            default_role text NOT NULL DEFAULT 'readonly' CHECK (default_role IN ('member', 'readonly')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
        ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON identity_providers TO "{role}" USING ({PREDICATE}) WITH CHECK ({PREDICATE});
        CREATE POLICY owner_access ON identity_providers TO CURRENT_USER USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, UPDATE, DELETE ON identity_providers TO "{role}";

        CREATE TABLE oidc_logins (
            state_hash bytea PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            browser_hash bytea NOT NULL,
            nonce text NOT NULL,
            code_verifier text NOT NULL,
            redirect_uri text NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);
        ALTER TABLE oidc_logins ENABLE ROW LEVEL SECURITY;
        ALTER TABLE oidc_logins FORCE ROW LEVEL SECURITY;
        CREATE POLICY owner_access ON oidc_logins TO CURRENT_USER USING (true) WITH CHECK (true);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS oidc_logins, identity_providers;
        DELETE FROM users WHERE password_hash IS NULL;
        DROP INDEX IF EXISTS users_oidc_account;
        ALTER TABLE users
            DROP CONSTRAINT IF EXISTS users_can_sign_in,
            DROP CONSTRAINT IF EXISTS users_oidc_account,
            DROP COLUMN IF EXISTS oidc_issuer,
            DROP COLUMN IF EXISTS oidc_subject,
            ALTER COLUMN password_hash SET NOT NULL;
        """
    )
