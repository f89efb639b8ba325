"""A tenant's OpenID Connect identity provider: its settings, checked once here, and where they are kept.

One provider per tenant. The client secret is sealed before it is stored (`ragapi.tenants.sealed`) and
opened only for the token request; what leaves this module for display is `IdentityProvider.secret_set`.
Tenant admins reach the row through their tenant's session (row-level security); the sign-in, which has
no principal yet, reads it as the owner by tenant id.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput, NotFound
from ragapi.core.settings import Settings
from ragapi.tenants.context import Role
from ragapi.tenants.sealed import Sealed, box_for

MAX_ISSUER_CHARS = 2000
MAX_CLIENT_ID_CHARS = 500
MAX_SECRET_CHARS = 2000
MAX_SCOPES = 20
MAX_SCOPE_CHARS = 100
MAX_CLAIM_CHARS = 100
SIGN_IN_ROLES = (Role.MEMBER, Role.READONLY)  # an admin is made by an admin, never by a provider
DEFAULT_SCOPES = ("openid", "email", "profile")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 section 3.3 scope-token
_CLAIM = re.compile(r"^[A-Za-z0-9_:./-]+$")  # plain names and URIs (Auth0's namespaced claims)


@dataclass(frozen=True, slots=True)
class IdentityProvider:
    tenant_id: uuid.UUID
    issuer: str
    client_id: str
    client_secret: Sealed | None
    allowed_domains: tuple[str, ...]
    groups_claim: str | None
    scopes: tuple[str, ...]
    default_role: Role
    token_auth_method: str | None = None  # None: as discovery announces (basic first)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def secret_set(self) -> bool:
        return self.client_secret is not None

    def allows_email(self, email: str) -> bool:
        """No domains listed: any. Otherwise the address's domain must be one of them exactly."""
        return not self.allowed_domains or email.rsplit("@", 1)[-1] in self.allowed_domains


@dataclass(frozen=True, slots=True)
class ProviderChange:
    """A PUT's content, as sent. `client_secret`: None keeps the stored one, "" removes it."""

    issuer: str
    client_id: str
    client_secret: str | None
    allowed_domains: list[str]
    groups_claim: str | None
    scopes: list[str]
    default_role: str
    token_auth_method: str | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, settings: Settings, field: str) -> str:
    """An https URL (or http on a loopback address where OIDC_ALLOW_HTTP_LOOPBACK allows it), with a host,
    no credentials, query or fragment; the error names `field`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{field}: not a valid URL") from exc
    if not host or parts.username or parts.password or parts.fragment:
        raise InvalidInput(f"{field}: must be an absolute URL with a host and no credentials or fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback(host):
        if settings.oidc_allow_http_loopback:
            return url
        raise InvalidInput(f"{field}: must be https (http on a loopback address needs OIDC_ALLOW_HTTP_LOOPBACK)")
    raise InvalidInput(f"{field}: must be an https URL")


def _check_issuer(issuer: str, settings: Settings) -> str:
    issuer = issuer.strip()
    if not 8 <= len(issuer) <= MAX_ISSUER_CHARS:
        raise InvalidInput(f"issuer: must be 8 to {MAX_ISSUER_CHARS} characters")
    check_endpoint(issuer, settings, "issuer")
    if urlsplit(issuer).query:
        raise InvalidInput("issuer: must have no query (OpenID Connect Discovery section 3)")
    return issuer


def _check_domains(domains: list[str], settings: Settings) -> tuple[str, ...]:
    if len(domains) > settings.oidc_max_allowed_domains:
        raise InvalidInput(f"allowed_domains: at most {settings.oidc_max_allowed_domains} (OIDC_MAX_ALLOWED_DOMAINS)")
    checked: list[str] = []
    for n, domain in enumerate(domains):
        domain = domain.strip().lower()
        if not _DOMAIN.match(domain):
            raise InvalidInput(f"allowed_domains.{n}: {domain[:100]!r} is not a domain name (e.g. example.com)")
        if domain not in checked:
            checked.append(domain)
    return tuple(checked)


def _check_scopes(scopes: list[str]) -> tuple[str, ...]:
    if len(scopes) > MAX_SCOPES:
        raise InvalidInput(f"scopes: at most {MAX_SCOPES}")
    for n, scope in enumerate(scopes):
        if not (0 < len(scope) <= MAX_SCOPE_CHARS and _SCOPE.match(scope)):
            raise InvalidInput(f"scopes.{n}: not an OAuth scope (printable ASCII, no space, quote or backslash)")
    if "openid" not in scopes:
        raise InvalidInput("scopes: must include 'openid'")
    return tuple(dict.fromkeys(scopes))


def check_change(
    tenant_id: uuid.UUID, change: ProviderChange, stored_secret: Sealed | None, settings: Settings
) -> IdentityProvider:
    """The provider a PUT describes, every field checked (each error names its field), its new secret
    sealed."""
    client_id = change.client_id.strip()
    if not 0 < len(client_id) <= MAX_CLIENT_ID_CHARS:
        raise InvalidInput(f"client_id: must be 1 to {MAX_CLIENT_ID_CHARS} characters")
    if change.client_secret is not None and len(change.client_secret) > MAX_SECRET_CHARS:
        raise InvalidInput(f"client_secret: at most {MAX_SECRET_CHARS} characters")
    secret = stored_secret
    if change.client_secret is not None:
        secret = Sealed(box_for(settings).seal(change.client_secret)) if change.client_secret else None
    claim = change.groups_claim.strip() if change.groups_claim is not None else None
    if claim is not None and not (0 < len(claim) <= MAX_CLAIM_CHARS and _CLAIM.match(claim)):
        raise InvalidInput(f"groups_claim: a claim name of 1 to {MAX_CLAIM_CHARS} letters, digits and _:./-")
    try:
        role = Role(change.default_role)
    except ValueError:
        role = None
    if role not in SIGN_IN_ROLES:
        raise InvalidInput("default_role: must be 'member' or 'readonly'")
    assert role is not None  # noqa: S101 - narrowed by the check above
    if change.token_auth_method is not None and change.token_auth_method not in TOKEN_AUTH_METHODS:
        raise InvalidInput(f"token_auth_method: must be one of {', '.join(TOKEN_AUTH_METHODS)}, or null")
    return IdentityProvider(
        tenant_id=tenant_id,
        issuer=_check_issuer(change.issuer, settings),
        client_id=client_id,
        client_secret=secret,
        allowed_domains=_check_domains(change.allowed_domains, settings),
        groups_claim=claim or None,
        scopes=_check_scopes(change.scopes),
        default_role=role,
        token_auth_method=change.token_auth_method,
    )


class GroupsClaimError(ValueError):
    """The provider's groups claim is not a bounded list of names."""


def claimed_groups(claims: dict[str, Any], claim_name: str | None, max_groups: int, max_chars: int) -> list[str]:
    """The group names an ID token's `claim_name` carries: a list of strings (or one string), trimmed, blanks
    and repeats dropped, in the provider's order. No claim configured or none sent: no groups.

    Refused (GroupsClaimError) rather than cut short, since a shortened list would silently drop
    memberships: anything but strings, more than `max_groups` names, a name over `max_chars`, and Entra ID's
    "groups overage" (the claim replaced by a `_claim_names` reference when a user is in too many groups)."""
    if claim_name is None:
        return []
    overage = claims.get("_claim_names")
    if isinstance(overage, dict) and claim_name in overage:
        raise GroupsClaimError(f"the '{claim_name}' claim was left out for too many groups (overage)")
    value = claims.get(claim_name)
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise GroupsClaimError(f"the '{claim_name}' claim is not a list of strings")
    if len(values) > max_groups:
        raise GroupsClaimError(f"the '{claim_name}' claim lists {len(values)} groups, over {max_groups}")
    names: list[str] = []
    for name in (v.strip() for v in values):
        if len(name) > max_chars:
            raise GroupsClaimError(f"the '{claim_name}' claim has a name over {max_chars} characters")
        if name and name not in names:
            names.append(name)
    return names


_COLUMNS = (
    "tenant_id, issuer, client_id, client_secret, allowed_domains, groups_claim, scopes, default_role, "
    "token_auth_method, created_at, updated_at"
)


def _from_row(row: Any) -> IdentityProvider:
    return IdentityProvider(
        tenant_id=row["tenant_id"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        client_secret=Sealed(row["client_secret"]) if row["client_secret"] is not None else None,
        allowed_domains=tuple(row["allowed_domains"]),
        groups_claim=row["groups_claim"],
        scopes=tuple(row["scopes"]),
        default_role=Role(row["default_role"]),
        token_auth_method=row["token_auth_method"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def for_sign_in(db: Database, tenant_id: uuid.UUID) -> IdentityProvider:
    """The provider of an active tenant; a tenant without one, unknown or suspended are the same 404."""
    row = await db.fetch_row(
        f"SELECT {', '.join('p.' + c.strip() for c in _COLUMNS.split(','))} FROM identity_providers p "
        "JOIN tenants t ON t.id = p.tenant_id WHERE p.tenant_id = $1 AND t.status = 'active'",
        tenant_id,
    )
    if row is None:
        raise NotFound("no identity provider is configured for this tenant")
    return _from_row(row)


@dataclass(frozen=True, slots=True)
class SignInChoice:
    """What a sign-in page may offer for a tenant a person named: its id and name, its provider's issuer."""

    tenant_id: uuid.UUID
    tenant_name: str
    issuer: str


async def named_for_sign_in(db: Database, ref: str) -> SignInChoice | None:
    """The active tenant with an identity provider that a person names on a sign-in page: by its id, or by
    its name (any case) when exactly one such tenant has it. Tenant names are not unique; with two, the
    person needs the sign-in link of their tenant (its id), and is told nothing about the others."""
    ref = ref.strip()
    if not ref:
        return None
    try:
        by_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        by_id = None
    rows = await db.fetch(
        "SELECT t.id, t.name, p.issuer FROM identity_providers p JOIN tenants t ON t.id = p.tenant_id "
        "WHERE t.status = 'active' AND (t.id = $1 OR ($1 IS NULL AND lower(t.name) = lower($2))) LIMIT 2",
        by_id,
        ref,
    )
    if len(rows) != 1:
        return None
    return SignInChoice(rows[0]["id"], rows[0]["name"], rows[0]["issuer"])


async def get(db: Database, tenant_id: uuid.UUID) -> IdentityProvider:
    async with db.tenant_session(tenant_id) as session:
        row = (
            (
                await session.execute(
                    text(f"SELECT {_COLUMNS} FROM identity_providers WHERE tenant_id = :t"), {"t": tenant_id}
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound("no identity provider is configured for this tenant")
    return _from_row(row)


async def put(db: Database, settings: Settings, tenant_id: uuid.UUID, change: ProviderChange) -> IdentityProvider:
    """Create or replace the tenant's provider (the stored secret is kept when the change names none)."""
    async with db.tenant_session(tenant_id) as session:
        stored = (
            await session.execute(
                text("SELECT client_secret FROM identity_providers WHERE tenant_id = :t FOR UPDATE"), {"t": tenant_id}
            )
        ).first()
        provider = check_change(tenant_id, change, Sealed(stored[0]) if stored and stored[0] else None, settings)
        row = (
            (
                await session.execute(
                    text(
                        f"""
                    INSERT INTO identity_providers ({_COLUMNS})
                    VALUES (:t, :issuer, :client_id, :secret, :domains, :claim, :scopes, :role, :method, now(), now())
                    ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
                        client_secret = excluded.client_secret, allowed_domains = excluded.allowed_domains,
                        groups_claim = excluded.groups_claim, scopes = excluded.scopes,
                        default_role = excluded.default_role, token_auth_method = excluded.token_auth_method,
                        updated_at = now()
                    RETURNING {_COLUMNS}
                    """
                    ),
                    {
                        "t": tenant_id,
                        "issuer": provider.issuer,
                        "client_id": provider.client_id,
                        "secret": provider.client_secret.token if provider.client_secret else None,
                        "domains": list(provider.allowed_domains),
                        "claim": provider.groups_claim,
                        "scopes": list(provider.scopes),
                        "role": provider.default_role.value,
                        "method": provider.token_auth_method,
                    },
                )
            )
            .mappings()
            .one()
        )
    return _from_row(row)


async def delete(db: Database, tenant_id: uuid.UUID) -> None:
    """Sign-in through the provider ends; the users it created stay (an admin may deactivate them)."""
    async with db.tenant_session(tenant_id) as session:
        deleted = await session.execute(
            text("DELETE FROM identity_providers WHERE tenant_id = :t RETURNING tenant_id"), {"t": tenant_id}
        )
        if deleted.first() is None:
            raise NotFound("no identity provider is configured for this tenant")
