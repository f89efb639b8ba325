"""Which restricted documents a transaction may read: the request's view, set once from its credential.

A document is readable by the whole tenant, or by the principals its access lists (users, groups, API
keys: all uuids). A `ReaderView` is the set of ids a request reads as (its own, its groups', or those of
the end user a delegating key acts for), or everything (admins, and work that is nobody's request:
workers, retention, the CLI). `Database.tenant_session` writes it into the transaction (`app.readers`),
where the row-level security policy `ragapi_can_read` (migration 0018) compares it with each row's
readers: code that forgets to filter still reads only what the view allows.

The view follows the request in a context variable, set by the credential check (`api.dependencies`)
and nowhere else; outside a request it is everything.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

EVERYTHING_SETTING = "*"
MAX_GROUP_NAME_CHARS = 200  # migration 0018


@dataclass(frozen=True, slots=True)
class ReaderView:
    ids: frozenset[uuid.UUID] = frozenset()
    everything: bool = False
    # the tenant's access version when the view was read: it grows with every change of access or
    # membership, so a cache partitioned by it stops serving what such a change may have hidden
    version: int = 0

    @classmethod
    def of(cls, *ids: uuid.UUID, version: int = 0) -> ReaderView:
        return cls(frozenset(ids), version=version)

    def reads(self, readers: Iterable[uuid.UUID] | None) -> bool:
        """What `ragapi_can_read` decides for a row with these readers (None: the whole tenant's), for
        rows already in hand."""
        return readers is None or self.everything or not self.ids.isdisjoint(readers)

    @classmethod
    def from_setting(cls, setting: str, version: int = 0) -> ReaderView:
        """The view `setting` wrote (a job keeps its submitter's this way)."""
        if setting == EVERYTHING_SETTING:
            return cls(everything=True, version=version)
        inner = setting.strip().removeprefix("{").removesuffix("}")
        return cls(frozenset(uuid.UUID(i) for i in inner.split(",") if i), version=version)

    @property
    def setting(self) -> str:
        """`app.readers`: a PostgreSQL uuid[] literal, or `*`."""
        if self.everything:
            return EVERYTHING_SETTING
        return "{" + ",".join(sorted(str(i) for i in self.ids)) + "}"

    @property
    def fingerprint(self) -> str:
        """What the answer caches partition by: principals with the same fingerprint see the same
        documents. Before the tenant has ever restricted a document (version 0) every view is the same."""
        if self.version == 0:
            return "all"
        if self.everything:
            return "everything"
        material = f"{self.version}:{self.setting}".encode()
        return hashlib.sha256(material).hexdigest()[:32]


EVERYTHING = ReaderView(everything=True)

current: ContextVar[ReaderView] = ContextVar("reader_view", default=EVERYTHING)


@contextmanager
def reading_as(view: ReaderView) -> Iterator[None]:
    """Run a block (tests, the CLI acting for someone) with this view."""
    token = current.set(view)
    try:
        yield
    finally:
        current.reset(token)


@dataclass(frozen=True, slots=True)
class DocumentAccess:
    """A restricted document's readers (each tuple sorted, without duplicates)."""

    users: tuple[uuid.UUID, ...] = ()
    groups: tuple[uuid.UUID, ...] = ()
    api_keys: tuple[uuid.UUID, ...] = ()

    @classmethod
    def of(
        cls, users: Sequence[uuid.UUID] = (), groups: Sequence[uuid.UUID] = (), api_keys: Sequence[uuid.UUID] = ()
    ) -> DocumentAccess:
        def norm(ids: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
            return tuple(sorted(set(ids), key=str))

        return cls(norm(users), norm(groups), norm(api_keys))

    @property
    def readers(self) -> list[uuid.UUID]:
        return [*self.users, *self.groups, *self.api_keys]

    def as_json(self) -> dict[str, list[str]]:
        return {
            "users": [str(u) for u in self.users],
            "groups": [str(g) for g in self.groups],
            "api_keys": [str(k) for k in self.api_keys],
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> DocumentAccess | None:
        if stored is None:
            return None
        return cls.of(
            [uuid.UUID(u) for u in stored.get("users", [])],
            [uuid.UUID(g) for g in stored.get("groups", [])],
            [uuid.UUID(k) for k in stored.get("api_keys", [])],
        )
