"""Who is calling and within which tenant, built only from a verified credential (never from a header,
a body or a runnable config)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from ragapi.core.access import ReaderView


class Scope(StrEnum):
    QUERY = "query"
    FEEDBACK = "feedback"
    INGEST = "ingest"
    ADMIN = "admin"
    DELEGATE = "delegate"  # may name, per request, the end user and groups it acts for


# What each scope implies: admin can do everything within a tenant; ingest and feedback include reading.
IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.INGEST: frozenset({Scope.INGEST, Scope.QUERY}),
    Scope.FEEDBACK: frozenset({Scope.FEEDBACK, Scope.QUERY}),
    Scope.QUERY: frozenset({Scope.QUERY}),
    Scope.DELEGATE: frozenset({Scope.DELEGATE}),
}


class Role(StrEnum):
    SUPERADMIN = "superadmin"  # manages tenants; belongs to none and reads no tenant data
    ADMIN = "admin"  # manages its tenant's users, keys and documents
    MEMBER = "member"  # queries, ingests, gives feedback
    READONLY = "readonly"  # queries only


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.SUPERADMIN: frozenset(),
    Role.ADMIN: frozenset({Scope.ADMIN}),
    Role.MEMBER: frozenset({Scope.INGEST, Scope.FEEDBACK}),
    Role.READONLY: frozenset({Scope.QUERY}),
}


def expand(scopes: frozenset[Scope]) -> frozenset[Scope]:
    return frozenset().union(*(IMPLIED[s] for s in scopes)) if scopes else frozenset()


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """A tenant's limits with the service defaults already applied (None = unlimited)."""

    name: str
    rate_limit_per_minute: int
    monthly_query_quota: int | None
    monthly_ingest_bytes_quota: int | None
    max_document_bytes: int

    def unlimited_ingest(self) -> TenantPlan:
        """For recording bytes already ingested (fetched URLs): counted, never refused afterwards."""
        return replace(self, monthly_ingest_bytes_quota=None)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an API key, a signed-in user, or the operator (the CLI on the server)."""

    kind: Literal["key", "user", "operator"]
    id: uuid.UUID
    tenant_id: uuid.UUID | None  # None only for superadmins
    scopes: frozenset[Scope]
    role: Role | None = None  # users only
    plan: TenantPlan | None = None  # None only for superadmins
    rate_limit_per_minute: int | None = None  # the key's own limit, if it has one
    session_id: uuid.UUID | None = None  # users: the login session (logout ends it)
    knowledge_base_ids: frozenset[uuid.UUID] | None = None  # a key restricted to these; None: all
    group_ids: frozenset[uuid.UUID] = frozenset()  # users: the groups they belong to
    access_version: int = 0  # its tenant's, when the credential was checked (`ReaderView.version`)

    @property
    def is_superadmin(self) -> bool:
        return self.role is Role.SUPERADMIN

    def allows(self, scope: Scope) -> bool:
        return scope in expand(self.scopes)

    @property
    def manages_access(self) -> bool:
        """May change any document's access, or delete it, by id, without reading it (the admin scope)."""
        return self.allows(Scope.ADMIN)

    @property
    def view(self) -> ReaderView:
        """The restricted documents it reads on its own: all of them for a person with the admin role and
        for the operator; else those listed for it or one of its groups. An API key reads as itself
        whatever its scopes, admin included: a key is a program, and what a program may read is granted to
        it by name (or, with the delegate scope, is that of the end user it names)."""
        if self.kind == "operator" or (self.kind == "user" and self.allows(Scope.ADMIN)):
            return ReaderView(everything=True, version=self.access_version)
        return ReaderView(frozenset({self.id}) | self.group_ids, version=self.access_version)


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The tenant scope of one request: every tenant route and chain runs inside exactly one."""

    tenant_id: uuid.UUID
    principal: Principal
    plan: TenantPlan
    delegated: ReaderView | None = None  # the end user's a delegating key acts for, on this request

    @property
    def view(self) -> ReaderView:
        """What this request reads as (`ragapi.core.access`)."""
        return self.delegated if self.delegated is not None else self.principal.view

    @property
    def scopes(self) -> frozenset[Scope]:
        return self.principal.scopes

    def allows(self, scope: Scope) -> bool:
        return self.principal.allows(scope)

    @property
    def manages_access(self) -> bool:
        return self.principal.manages_access

    @property
    def knowledge_base_ids(self) -> frozenset[uuid.UUID] | None:
        """The knowledge bases this caller may use (None: all of the tenant's)."""
        return self.principal.knowledge_base_ids

    def may_use(self, kb_id: uuid.UUID) -> bool:
        allowed = self.principal.knowledge_base_ids
        return allowed is None or kb_id in allowed
