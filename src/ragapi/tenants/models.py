"""Tenant-side tables (schema owned by the Alembic migrations in core/migrations)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, Text
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field, SQLModel


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str
    status: str = "active"
    cache_enabled: bool = True
    semantic_cache_threshold: float | None = None
    plan: str = "default"
    rate_limit_per_minute: int | None = None
    # bigint columns: bound as such (a plain `int` field binds as a 32-bit integer and fails past 2 GiB)
    monthly_query_quota: int | None = Field(default=None, sa_column=Column(BigInteger))
    monthly_ingest_bytes_quota: int | None = Field(default=None, sa_column=Column(BigInteger))
    max_document_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    allow_registration: bool = False
    registration_role: str = "readonly"
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    name: str
    prefix: str
    key_hash: str
    scopes: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    rate_limit_per_minute: int | None = None
    # the knowledge bases it may use; None: all of its tenant's
    knowledge_base_ids: list[uuid.UUID] | None = Field(default=None, sa_column=Column(ARRAY(PgUUID(as_uuid=True))))
    created_by: uuid.UUID | None = None
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID | None = None
    email: str
    password_hash: str | None = None  # None: signs in only through the tenant's identity provider
    role: str
    is_active: bool = True
    token_version: int = 0
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    password_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), server_default="now()")
    )
    oidc_issuer: str | None = None  # with oidc_subject: the identity provider's account this user is
    oidc_subject: str | None = None
    external_id: str | None = None  # the id a client app or the identity provider knows this user by


class AuthSession(SQLModel, table=True):
    """One login: the refresh token it currently accepts, rotated on every refresh."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID
    refresh_jti: uuid.UUID
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class TenantUsage(SQLModel, table=True):
    __tablename__ = "tenant_usage"

    tenant_id: uuid.UUID = Field(primary_key=True)
    period: date = Field(primary_key=True)
    queries: int = 0
    ingest_bytes: int = 0


class Group(SQLModel, table=True):
    __tablename__ = "groups"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    name: str
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_members"

    group_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    created_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), server_default="now()"))
