"""The tenant scope of one request, built only from a verified credential."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    QUERY = "query"
    INGEST = "ingest"
    ADMIN = "admin"


# What each scope implies: admin can do everything a tenant can, ingest includes reading documents.
IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.INGEST: frozenset({Scope.INGEST, Scope.QUERY}),
    Scope.QUERY: frozenset({Scope.QUERY}),
}


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return any(scope in IMPLIED[s] for s in self.scopes)
