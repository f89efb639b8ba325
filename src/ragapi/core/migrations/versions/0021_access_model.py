"""Who a user is elsewhere, and identity providers' client secrets sealed at rest.

`users.external_id` is the id a client app or the identity provider knows a user by (a CRM's customer
number, an ID token's `sub`): unique in its tenant, optional, never a superadmin's. A delegating key names
its end user by it (`X-On-Behalf-Of`). Row-level security on `users` is unchanged. The length is bounded
here at the largest USER_EXTERNAL_ID_MAX_CHARS may be; the setting bounds what the service accepts.

`identity_providers.client_secret` holds sealed values only (`enc:v1:` and a Fernet token,
`ragapi.tenants.sealed`): the secrets stored in plaintext so far are sealed here, with the key the service
passes in (`ragapi.core.migrate`: `ragapi migrate` and the start-up do); the downgrade opens them again.
A check refuses anything unsealed from then on.

`ingest_files.access_by` keeps the submitter's view (`ReaderView.setting`): a file whose bytes a
knowledge base holds already gives that document its access list, if the submitter could have set it
(`ingestion.access.apply_again`); NULL (files submitted before) changes nothing.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from alembic import context, op
from sqlalchemy import text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MAX_EXTERNAL_ID_CHARS = 1000  # the largest USER_EXTERNAL_ID_MAX_CHARS
SEALED = "enc:v1:"  # ragapi.tenants.sealed.PREFIX
# A 2,000-character secret (identity_providers.MAX_SECRET_CHARS) of 4-byte characters, sealed: under 11,000.
MAX_SEALED_CHARS = 16_000


def _reseal(sealing: str, pick: str) -> None:
    """Pass each stored client secret that `pick` selects through the function the service gave as
    `sealing` (`seal` or `unseal`)."""
    bind = op.get_bind()
    rows = bind.execute(text(f"SELECT tenant_id, client_secret FROM identity_providers WHERE {pick}")).all()  # noqa: S608 - fixed predicates
    if not rows:
        return
    change = context.config.attributes.get(sealing)
    if change is None:
        raise RuntimeError(
            f"migration 0021 needs the service's key to {sealing} identity providers' client secrets: run it with "
            "`ragapi migrate` (or let the service migrate at start-up)"
        )
    for tenant_id, secret in rows:
        bind.execute(
            text("UPDATE identity_providers SET client_secret = :s WHERE tenant_id = :t"),
            {"s": change(secret), "t": tenant_id},
        )


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE users
            ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND {MAX_EXTERNAL_ID_CHARS}),
            ADD CONSTRAINT users_external_id_in_a_tenant CHECK (external_id IS NULL OR tenant_id IS NOT NULL);
        CREATE UNIQUE INDEX users_external_id ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
        ALTER TABLE ingest_files ADD COLUMN access_by text;
        ALTER TABLE identity_providers DROP CONSTRAINT IF EXISTS identity_providers_client_secret_check;
        """
    )
    _reseal("seal", f"client_secret IS NOT NULL AND client_secret NOT LIKE '{SEALED}%'")
    op.execute(
        f"""
        ALTER TABLE identity_providers ADD CONSTRAINT identity_providers_client_secret_sealed
            CHECK (client_secret LIKE '{SEALED}%' AND length(client_secret) <= {MAX_SEALED_CHARS});
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE identity_providers DROP CONSTRAINT IF EXISTS identity_providers_client_secret_sealed")
    _reseal("unseal", f"client_secret LIKE '{SEALED}%'")
    op.execute(
        """
        ALTER TABLE identity_providers ADD CONSTRAINT identity_providers_client_secret_check
            CHECK (length(client_secret) BETWEEN 1 AND 2000);
        ALTER TABLE ingest_files DROP COLUMN IF EXISTS access_by;
        DROP INDEX IF EXISTS users_external_id;
        ALTER TABLE users DROP CONSTRAINT IF EXISTS users_external_id_in_a_tenant,
            DROP COLUMN IF EXISTS external_id;
        """
    )
