"""People: accounts, logins (sessions with rotated refresh tokens), password change and reset.

A login creates a session row; the refresh token names the session and the one `jti` it currently
accepts. Refreshing rotates that `jti`; presenting an old one means the token was copied, so the whole
session is revoked (refresh-token reuse detection, RFC 9700 §4.14.2). Access tokens name the session too,
so logout ends them at once, and carry the user's token version, which a password change, a reset or a
deactivation bumps: every older token stops working on its next request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core.database import Database
from ragapi.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ragapi.core.settings import Settings
from ragapi.tenants.context import ROLE_SCOPES, Principal, Role
from ragapi.tenants.models import AuthSession, Tenant, User
from ragapi.tenants.passwords import check_policy, hash_password, verify_password
from ragapi.tenants.plans import PLAN_COLUMNS, plan_from_row
from ragapi.tenants.tokens import TokenCodec, TokenType

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# printable ASCII, no space at either end: an external id travels in a header (X-On-Behalf-Of), and an
# ID token's `sub` is ASCII (OpenID Connect Core section 2)
_EXTERNAL_ID = re.compile(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$")


class Keep:
    """An update's "leave this field as it is" (None means: remove it)."""


KEEP = Keep()


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput("not a valid e-mail address")
    return email


def check_external_id(external_id: str, limit: int) -> str:
    """InvalidInput unless `external_id` is 1 to `limit` (USER_EXTERNAL_ID_MAX_CHARS) printable ASCII
    characters without a space at either end."""
    if len(external_id) > limit:
        raise InvalidInput(f"external_id: at most {limit} characters (USER_EXTERNAL_ID_MAX_CHARS)")
    if not _EXTERNAL_ID.match(external_id):
        raise InvalidInput("external_id: printable ASCII characters, without a space at either end")
    return external_id


def _conflict(exc: IntegrityError) -> Conflict:
    """Which of a user's unique values another user of the tenant already has."""
    if "users_external_id" in str(exc.orig):
        return Conflict("another user of this tenant has this external id")
    return Conflict("a user with this e-mail already exists")


async def create_user(
    db: Database,
    settings: Settings,
    tenant_id: uuid.UUID | None,
    email: str,
    password: str,
    role: Role,
    external_id: str | None = None,
) -> User:
    """A user in a tenant (written under that tenant's RLS scope), or a superadmin (no tenant)."""
    if (role is Role.SUPERADMIN) != (tenant_id is None):
        raise InvalidInput("superadmins belong to no tenant; every other role belongs to exactly one")
    if external_id is not None:
        if tenant_id is None:
            raise InvalidInput("external_id: superadmins belong to no tenant and have none")
        check_external_id(external_id, settings.user_external_id_max_chars)
    check_policy(password, settings.password_min_length)
    user = User(
        tenant_id=tenant_id,
        email=normalise_email(email),
        password_hash=await hash_password(password),
        role=role.value,
        external_id=external_id,
    )
    try:
        scope = db.admin_session() if tenant_id is None else db.tenant_session(tenant_id)
        async with scope as session:
            session.add(user)
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return user


async def register(db: Database, settings: Settings, tenant_id: uuid.UUID, email: str, password: str) -> User:
    """Self-service sign-up, only into an active tenant that allows it, with the tenant's chosen role."""
    async with db.admin_session() as session:
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None or not tenant.allow_registration or tenant.status != "active":
        raise Forbidden("registration is not open for this tenant")
    return await create_user(db, settings, tenant_id, email, password, Role(tenant.registration_role))


async def _issue_pair(codec: TokenCodec, user: User, auth_session: AuthSession) -> TokenPair:
    access, claims = codec.issue(TokenType.ACCESS, user.id, user.token_version, auth_session.id)
    refresh, _ = codec.issue(TokenType.REFRESH, user.id, user.token_version, auth_session.id, auth_session.refresh_jti)
    return TokenPair(access, refresh, int((claims.expires_at - datetime.now(UTC)).total_seconds()))


async def login(db: Database, codec: TokenCodec, email: str, password: str) -> TokenPair:
    """Every failure (unknown e-mail, wrong password, inactive user, suspended tenant) is the same 401."""
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = ""
    async with db.admin_session() as session:
        row = (
            await session.execute(
                select(User, Tenant.status)
                .join(Tenant, col(Tenant.id) == col(User.tenant_id), isouter=True)
                .where(col(User.email) == email)
            )
        ).first()
    user, tenant_status = row if row is not None else (None, None)
    if not await verify_password(password, user.password_hash if user else None) or user is None:
        raise Unauthenticated("wrong e-mail or password")
    if not user.is_active or (user.tenant_id is not None and tenant_status != "active"):
        raise Unauthenticated("wrong e-mail or password")
    return await start_session(db, codec, user)


async def start_session(db: Database, codec: TokenCodec, user: User) -> TokenPair:
    """A login session for a user who has proven who they are (a password, or the identity provider)."""
    auth_session = AuthSession(
        user_id=user.id, refresh_jti=uuid.uuid4(), expires_at=datetime.now(UTC) + codec.ttl[TokenType.REFRESH]
    )
    async with db.admin_session() as session:
        session.add(auth_session)
    return await _issue_pair(codec, user, auth_session)


@dataclass(frozen=True, slots=True)
class ExternalAccount:
    """An account the tenant's identity provider vouches for: its issuer and subject, and its verified
    e-mail address."""

    tenant_id: uuid.UUID
    issuer: str
    subject: str
    email: str
    role: Role  # for a user made at the first sign-in
    external_id: str | None = None  # the subject, when it can be one (USER_EXTERNAL_ID_MAX_CHARS)


async def external_user(session: AsyncSession, account: ExternalAccount) -> User:
    """The user an identity provider's account signs in as: the one linked to it; else the tenant's user
    whose external id is the account's subject, or else the one with its e-mail address, linked now (the
    provider verified the address, and the tenant's admin chose the provider); else a new user with the
    provider's default role and no password. A user linked now without an external id takes the subject
    as its external id, unless another user of the tenant has it."""
    email = normalise_email(account.email)
    linked = (
        await session.execute(
            select(User).where(
                col(User.tenant_id) == account.tenant_id,
                col(User.oidc_issuer) == account.issuer,
                col(User.oidc_subject) == account.subject,
            )
        )
    ).scalar_one_or_none()
    user = linked
    if user is None:
        if account.external_id is not None:
            user = (
                await session.execute(
                    select(User)
                    .where(
                        col(User.tenant_id) == account.tenant_id,
                        col(User.external_id) == account.external_id,
                        col(User.oidc_subject).is_(None),
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
        if user is None:
            user = (
                await session.execute(select(User).where(col(User.email) == email).with_for_update())
            ).scalar_one_or_none()
            if user is not None and user.tenant_id != account.tenant_id:
                raise Conflict("this e-mail address belongs to an account outside this tenant")
            if user is not None and user.oidc_subject is not None:
                raise Conflict("this e-mail address is linked to another account of the identity provider")
        if user is None:
            user = User(tenant_id=account.tenant_id, email=email, password_hash=None, role=account.role.value)
        user.oidc_issuer, user.oidc_subject = account.issuer, account.subject
        if user.external_id is None and account.external_id is not None:
            taken = (
                await session.execute(
                    select(User.id).where(
                        col(User.tenant_id) == account.tenant_id, col(User.external_id) == account.external_id
                    )
                )
            ).first()
            if taken is None:
                user.external_id = account.external_id
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent first sign-in of the same account or address
            raise Conflict("this account is being signed in elsewhere at the same moment; try again") from exc
    if not user.is_active:
        raise Forbidden("this account is deactivated")
    return user


async def refresh(db: Database, codec: TokenCodec, refresh_token: str) -> TokenPair:
    claims = codec.verify(refresh_token, TokenType.REFRESH)
    now = datetime.now(UTC)
    async with db.admin_session() as session:
        row = (
            await session.execute(
                select(AuthSession, User, Tenant.status)
                .join(User, col(User.id) == col(AuthSession.user_id))
                .join(Tenant, col(Tenant.id) == col(User.tenant_id), isouter=True)
                .where(col(AuthSession.id) == claims.session_id, col(User.id) == claims.user_id)
                .with_for_update(of=AuthSession)  # type: ignore[arg-type]
            )
        ).first()
        if row is None:
            raise Unauthenticated("invalid or expired token")
        auth_session, user, tenant_status = row
        if auth_session.refresh_jti != claims.jti:
            # An older refresh token came back: someone holds a copy. End the whole session.
            auth_session.revoked_at = auth_session.revoked_at or now
            session.add(auth_session)
            await session.commit()
            raise Unauthenticated("invalid or expired token")
        stale = auth_session.revoked_at is not None or auth_session.expires_at <= now
        inactive = not user.is_active or user.token_version != claims.version
        if stale or inactive or (user.tenant_id is not None and tenant_status != "active"):
            raise Unauthenticated("invalid or expired token")
        auth_session.refresh_jti = uuid.uuid4()
        session.add(auth_session)
    return await _issue_pair(codec, user, auth_session)


async def logout(db: Database, session_id: uuid.UUID) -> None:
    async with db.admin_session() as session:
        await session.execute(
            update(AuthSession)
            .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=datetime.now(UTC))
        )


async def _set_password(session: AsyncSession, user: User, new_hash: str) -> None:
    """New password: bump the token version and end every session, so all older tokens die."""
    now = datetime.now(UTC)
    user.password_hash = new_hash
    user.token_version += 1
    user.password_changed_at = now
    session.add(user)
    await session.execute(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user.id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def change_password(db: Database, settings: Settings, user_id: uuid.UUID, current: str, new: str) -> None:
    check_policy(new, settings.password_min_length)
    async with db.admin_session() as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None or not await verify_password(current, user.password_hash):
            raise Unauthenticated("the current password is wrong")
        await _set_password(session, user, await hash_password(new))


async def reset_token(db: Database, codec: TokenCodec, email: str) -> tuple[str, datetime] | None:
    """A single-use reset token for an active account (None when there is none: say nothing to the caller)."""
    try:
        email = normalise_email(email)
    except InvalidInput:
        return None
    async with db.admin_session() as session:
        user = (await session.execute(select(User).where(col(User.email) == email))).scalar_one_or_none()
    if user is None or not user.is_active or user.password_hash is None:
        return None  # a user of the identity provider alone does not get a password behind its back
    token, claims = codec.issue(TokenType.RESET, user.id, user.token_version)
    return token, claims.expires_at


async def reset_password(db: Database, settings: Settings, codec: TokenCodec, token: str, new: str) -> None:
    claims = codec.verify(token, TokenType.RESET)
    check_policy(new, settings.password_min_length)
    new_hash = await hash_password(new)
    async with db.admin_session() as session:
        user = await session.get(User, claims.user_id, with_for_update=True)
        # The version bump on use makes the token single-use; a later password change also voids it.
        if user is None or not user.is_active or user.token_version != claims.version:
            raise Unauthenticated("invalid or expired token")
        await _set_password(session, user, new_hash)


# The user, the session the token belongs to, and the user's tenant (none for a superadmin) in one row,
# on the driver (`Database.fetch_row`): every signed-in request runs it.
_TOKEN_LOOKUP = f"""
SELECT u.id, u.tenant_id, u.role, u.is_active, u.token_version, s.revoked_at, s.expires_at,
       t.status, t.access_version, ARRAY(SELECT m.group_id FROM group_members m WHERE m.user_id = u.id) AS group_ids,
       {", ".join(f"t.{c}" for c in PLAN_COLUMNS)}
FROM users u JOIN auth_sessions s ON s.user_id = u.id LEFT JOIN tenants t ON t.id = u.tenant_id
WHERE u.id = $1 AND s.id = $2
"""  # noqa: S608 - fixed column names, no input


async def principal_for_access_token(db: Database, settings: Settings, codec: TokenCodec, token: str) -> Principal:
    """Verify an access token and re-check, on this request, everything that can revoke it."""
    claims = codec.verify(token, TokenType.ACCESS)
    now = datetime.now(UTC)
    row = await db.fetch_row(_TOKEN_LOOKUP, claims.user_id, claims.session_id)
    if row is None:
        raise Unauthenticated("invalid or expired token")
    expired = row["revoked_at"] is not None or row["expires_at"] <= now
    if expired or not row["is_active"] or row["token_version"] != claims.version:
        raise Unauthenticated("invalid or expired token")
    role = Role(row["role"])
    if row["tenant_id"] is not None and row["status"] != "active":
        raise Forbidden("tenant is suspended")
    return Principal(
        kind="user",
        id=row["id"],
        tenant_id=row["tenant_id"],
        scopes=ROLE_SCOPES[role],
        role=role,
        plan=plan_from_row(row, settings) if row["tenant_id"] is not None else None,
        session_id=claims.session_id,
        group_ids=frozenset(row["group_ids"]),
        access_version=row["access_version"] or 0,
    )


async def list_users(db: Database, tenant_id: uuid.UUID) -> list[User]:
    async with db.tenant_session(tenant_id) as session:
        rows = await session.execute(
            select(User).where(col(User.tenant_id) == tenant_id).order_by(col(User.created_at), col(User.id))
        )
        return list(rows.scalars())


async def update_user(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role | None = None,
    is_active: bool | None = None,
    external_id: str | Keep | None = KEEP,
    external_id_limit: int = 1000,
) -> User:
    """Change a user's role, external id (None removes it; at most `external_id_limit` characters,
    USER_EXTERNAL_ID_MAX_CHARS) or switch them off (which ends their sessions and tokens at once)."""
    if role is Role.SUPERADMIN:
        raise InvalidInput("a tenant user cannot become a superadmin")
    if isinstance(external_id, str):
        check_external_id(external_id, external_id_limit)
    try:
        async with db.tenant_session(tenant_id) as session:
            user = (
                await session.execute(
                    select(User).where(col(User.id) == user_id, col(User.tenant_id) == tenant_id).with_for_update()
                )
            ).scalar_one_or_none()
            if user is None:
                raise NotFound("no such user")
            if role is not None:
                user.role = role.value
            if is_active is not None and is_active != user.is_active:
                user.is_active = is_active
                user.token_version += 1
            if not isinstance(external_id, Keep):
                user.external_id = external_id
            session.add(user)
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return user


async def delete_user(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, acting: uuid.UUID | None) -> None:
    """Delete a tenant's user for good; their login sessions and group memberships go with the row (so
    every token of theirs fails at once) and the e-mail address is free again. The query log and feedback
    keep their id, as they keep a revoked key's. Not one's own account: another admin deletes it."""
    if user_id == acting:
        raise Conflict("you cannot delete your own account; another admin can")
    # The application role may not delete users (migration 0004): the owner's session, kept to this
    # tenant by the statement's own predicate.
    async with db.admin_session() as session:
        statement = delete(User).where(col(User.id) == user_id, col(User.tenant_id) == tenant_id)
        if (await session.execute(statement.returning(col(User.id)))).first() is None:
            raise NotFound("no such user")


async def get_user(db: Database, user_id: uuid.UUID) -> User:
    async with db.admin_session() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user
