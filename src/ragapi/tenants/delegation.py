"""Client apps acting for their users: a key with the `delegate` scope names, per request, the end user
and the groups it acts for (`X-On-Behalf-Of`, `X-On-Behalf-Of-Groups`); the request then reads what they
may read, and nothing the key itself was granted.

The end user is one of the tenant's users, by id, e-mail or external id (`users.external_id`: the id the
app knows its user by); the groups are the tenant's, by id or name.
Without `X-On-Behalf-Of-Groups` the user's own memberships count; with it (even empty), only the groups it
names: the app knows its user's groups better than a copy synced at sign-in. Unknown users or groups, and
another tenant's, are one and the same 422 naming them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import or_
from sqlmodel import col, select

from ragapi.core.access import ReaderView
from ragapi.core.database import Database
from ragapi.core.errors import Forbidden, InvalidInput
from ragapi.tenants.context import Principal, Scope
from ragapi.tenants.groups import group_ids_named
from ragapi.tenants.models import GroupMember, User

MAX_REF_CHARS = 254


def parse_groups(header: str | None, limit: int) -> list[str] | None:
    """`X-On-Behalf-Of-Groups`: comma-separated group names or ids (None: the header is absent)."""
    if header is None:
        return None
    refs = list(dict.fromkeys(r.strip() for r in header.split(",") if r.strip()))
    if len(refs) > limit:
        raise InvalidInput(f"X-On-Behalf-Of-Groups names {len(refs)} groups; at most {limit} (MAX_DELEGATED_GROUPS)")
    if any(len(r) > MAX_REF_CHARS for r in refs):
        raise InvalidInput(f"X-On-Behalf-Of-Groups: a group reference has at most {MAX_REF_CHARS} characters")
    return refs


async def delegated_view(
    db: Database,
    principal: Principal,
    user_ref: str | None,
    group_refs: Sequence[str] | None,
    max_external_id_chars: int = MAX_REF_CHARS,
) -> ReaderView | None:
    """The view of the end user `principal` acts for, or None when the request names nobody. A reference
    that is one user's id or e-mail and another's external id is refused rather than guessed at."""
    if user_ref is None and group_refs is None:
        return None
    if not principal.allows(Scope.DELEGATE) or principal.kind != "key":
        raise Forbidden("acting for an end user (X-On-Behalf-Of) needs an API key with the 'delegate' scope")
    if user_ref is None or not user_ref.strip():
        raise InvalidInput("X-On-Behalf-Of-Groups needs X-On-Behalf-Of: the end user the groups are for")
    user_ref = user_ref.strip()
    longest = max(MAX_REF_CHARS, max_external_id_chars)
    if len(user_ref) > longest:
        raise InvalidInput(f"X-On-Behalf-Of has at most {longest} characters")
    tenant_id = principal.tenant_id
    assert tenant_id is not None  # noqa: S101 - keys belong to a tenant
    try:
        by_id: uuid.UUID | None = uuid.UUID(user_ref)
    except ValueError:
        by_id = None
    async with db.tenant_session(tenant_id) as session:
        own = col(User.id) == by_id if by_id is not None else col(User.email) == user_ref.lower()
        matches = set(
            (
                await session.execute(
                    select(User.id).where(col(User.tenant_id) == tenant_id, or_(own, col(User.external_id) == user_ref))
                )
            ).scalars()
        )
        if not matches:
            raise InvalidInput(f"unknown user {user_ref!r} in X-On-Behalf-Of")
        if len(matches) > 1:
            raise InvalidInput(
                f"X-On-Behalf-Of {user_ref!r} is one user's id or e-mail and another's external id: name the user by id"
            )
        user_id = matches.pop()
        if group_refs is None:
            groups = set(
                (
                    await session.execute(select(GroupMember.group_id).where(col(GroupMember.user_id) == user_id))
                ).scalars()
            )
        else:
            groups, missing = await group_ids_named(session, tenant_id, group_refs)
            if missing:
                raise InvalidInput("unknown group " + ", ".join(repr(m) for m in missing) + " in X-On-Behalf-Of-Groups")
    return ReaderView(frozenset({user_id}) | frozenset(groups), version=principal.access_version)
