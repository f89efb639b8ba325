"""Request and response bodies of the REST API: pure pydantic models, shared by the server (`ragapi.api`)
and the Python client (`ragapi.client`), so neither imports the other's stack."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ragapi.answering.answer import Answer, Citation, Passage, Usage
from ragapi.answering.conversations.limits import MAX_KNOWLEDGE_BASE_CHARS, MAX_KNOWLEDGE_BASES, MAX_TITLE_CHARS
from ragapi.core import inputs
from ragapi.core.access import MAX_GROUP_NAME_CHARS as GROUP_NAME_CHARS
from ragapi.core.access import DocumentAccess
from ragapi.retrieval.knowledge_bases import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_REFS, KnowledgeBaseSettings


class Body(BaseModel):
    """Every request body. Unknown fields are refused (a tenant id or role smuggled into a request is a
    422, never obeyed), numbers must be finite, and every value, nested ones included, follows the input
    policy (`core.inputs`): a value PostgreSQL cannot store is a 422 naming its field, not a failed
    statement."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        found = inputs.problem(value)
        if found is not None:
            inner, reason = found
            raise PydanticCustomError("input_policy", "{reason}", {"reason": f"{inner} {reason}".strip()})
        return value


class QueryRequest(Body):
    query: str = Field(min_length=1, description="The question; limited by MAX_QUERY_CHARS")
    knowledge_bases: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REFS,
        description="Knowledge bases to search (ids or names), fused into one ranking; none: the tenant's default",
        examples=[["handbook", "wiki"]],
    )
    top_k: int | None = Field(
        default=None, ge=1, description="Sources to cite; the knowledge base's own default, else DEFAULT_TOP_K"
    )
    filters: dict[str, Any] | None = Field(default=None, description='Metadata filters, e.g. {"lang": ["en", "de"]}')
    stream: bool = False
    cache: bool = Field(default=True, description="false skips the answer cache for this request")


QueryResponse = Answer  # the one answer model, as every surface returns it


class AccessIn(Body):
    """Who may read a document besides the tenant's admins: users, groups and API keys of the tenant, by
    id. An access list that names nobody leaves the document to admins."""

    users: list[uuid.UUID] = Field(default_factory=list)
    groups: list[uuid.UUID] = Field(default_factory=list)
    api_keys: list[uuid.UUID] = Field(default_factory=list)

    def model(self) -> DocumentAccess:
        return DocumentAccess.of(self.users, self.groups, self.api_keys)


class AccessOut(BaseModel):
    users: list[uuid.UUID]
    groups: list[uuid.UUID]
    api_keys: list[uuid.UUID]


class DocumentAccessPut(Body):
    access: AccessIn | None = Field(description="null: the whole tenant may read it (the default)")


class BulkAccessPut(DocumentAccessPut):
    document_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)


class DocumentIn(Body):
    text: str | None = Field(default=None, min_length=1)
    url: str | None = Field(
        default=None, min_length=8, max_length=2048, description="Fetched by the server instead of `text` (http/https)"
    )
    title: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, min_length=1, max_length=500)
    access: AccessIn | None = Field(default=None, description="Who may read it; absent or null: the whole tenant")

    @model_validator(mode="after")
    def _one_source(self) -> DocumentIn:
        if (self.text is None) == (self.url is None):
            raise ValueError("give exactly one of text or url")
        return self


class IngestJson(Body):
    documents: list[DocumentIn] = Field(min_length=1)


class IngestedDocument(BaseModel):
    index: int
    filename: str | None
    status: str
    document_id: uuid.UUID | None
    chunks: int
    error: dict[str, Any] | None = None


class IngestResponse(BaseModel):
    job_id: uuid.UUID
    status: str
    documents: list[IngestedDocument]


class JobProgress(BaseModel):
    files_total: int
    files_done: int = Field(description="Files finished, whatever their outcome")
    files_failed: int
    files_cancelled: int
    chunks_done: int


class JobFile(IngestedDocument):
    removed_characters: int = Field(
        default=0, description="NUL characters and lone surrogates removed from the file's extracted text"
    )
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None


class JobSummary(BaseModel):
    job_id: uuid.UUID
    status: str = Field(description="queued, running, succeeded, failed, partially_failed or cancelled")
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = None
    progress: JobProgress
    links: dict[str, str]


class JobOut(JobSummary):
    documents: list[JobFile]


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None


class DocumentOut(BaseModel):
    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    external_id: str | None
    title: str
    source: str | None
    content_type: str
    content_hash: str
    metadata: dict[str, Any]
    chunks: int
    size_bytes: int
    created_at: datetime | None
    access: AccessOut | None = Field(description="Who may read it besides admins; null: the whole tenant")


class DocumentAccessOut(BaseModel):
    """A document whose access the caller changed but may not read (an admin key managing access): its id,
    knowledge base and access, nothing of what it holds."""

    document_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    access: AccessOut | None = Field(description="Who may read it besides admins; null: the whole tenant")


class DocumentAccessPage(BaseModel):
    items: list[DocumentOut | DocumentAccessOut] = Field(
        description="Each document as the caller reads it after the change: whole, or only its access"
    )


class DocumentPatch(Body):
    metadata: dict[str, Any] = Field(description="Replaces the document's metadata; chunks are not re-embedded")


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


# --- auth, users, keys, tenants -------------------------------------------------------------------------
# Bodies forbid unknown fields: a tenant id or role smuggled into a request is a 422, never obeyed.

UserRole = Literal["admin", "member", "readonly"]
KeyScope = Literal["query", "feedback", "ingest", "admin", "delegate"]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class LoginForm(Body):
    """The OAuth2 password grant's form (RFC 6749 section 4.3): `username` is the e-mail address."""

    model_config = ConfigDict(extra="ignore")  # clients add client_id, client_secret and the like

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)
    grant_type: Literal["password"] | None = None
    scope: str = Field(default="", max_length=1000)


class RefreshRequest(Body):
    refresh_token: str = Field(min_length=1, max_length=4096)


class RegisterRequest(Body):
    tenant_id: uuid.UUID = Field(description="The tenant to join; it must allow self-registration")
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ForgotPassword(Body):
    email: str = Field(min_length=1, max_length=254)


class PasswordReset(Body):
    token: str = Field(min_length=1, max_length=4096)
    new_password: str = Field(min_length=1, max_length=256)


_EXTERNAL_ID = (
    "The id a client app or the identity provider knows this user by (e.g. a CRM's customer number, an ID "
    "token's `sub`), unique in the tenant; `X-On-Behalf-Of` may name the user by it"
)


class UserOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    email: str
    role: str
    is_active: bool
    created_at: datetime | None
    external_id: str | None = Field(default=None, description=_EXTERNAL_ID)


class UserCreate(Body):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)
    role: UserRole = "member"
    external_id: str | None = Field(
        default=None, min_length=1, max_length=1000, description=_EXTERNAL_ID + " (USER_EXTERNAL_ID_MAX_CHARS)"
    )


class UserUpdate(Body):
    role: UserRole | None = None
    is_active: bool | None = None
    external_id: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Omitted: kept; null: removed. " + _EXTERNAL_ID
    )


class IdentityProviderIn(Body):
    """A tenant's OpenID Connect identity provider (PUT replaces it whole, except an omitted secret)."""

    issuer: str = Field(
        min_length=8, max_length=2000, description="The provider's issuer URL, exactly as its discovery document says"
    )
    client_id: str = Field(min_length=1, max_length=500, description="This API's client id at the provider")
    client_secret: str | None = Field(
        default=None,
        max_length=2000,
        description="Stored, never shown; omitted or null: keep the stored one; empty: none (a public client)",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="E-mail domains that may sign in (exact match); empty: any address the provider verified",
    )
    groups_claim: str | None = Field(
        default=None, max_length=100, description="The ID token claim listing the user's groups (e.g. `groups`)"
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"], max_length=100)
    default_role: Literal["member", "readonly"] = Field(
        default="readonly", description="Role of a user created at their first sign-in"
    )
    token_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = Field(
        default=None,
        description="How the client authenticates at the token endpoint; null: client_secret_basic when the "
        "provider announces it, else client_secret_post",
    )


class IdentityProviderOut(BaseModel):
    tenant_id: uuid.UUID
    issuer: str
    client_id: str
    client_secret_set: bool = Field(description="Whether a client secret is stored (it is never shown)")
    allowed_domains: list[str]
    groups_claim: str | None
    scopes: list[str]
    default_role: str
    token_auth_method: str | None
    redirect_uri: str = Field(description="The redirect URI to register at the provider for this tenant")
    created_at: datetime | None
    updated_at: datetime | None


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[KeyScope] = Field(min_length=1, max_length=4)
    knowledge_bases: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REFS,
        description="Restrict the key to these knowledge bases (ids or names); none: all of the tenant's",
    )
    expires_at: datetime | None = Field(default=None, description="Timezone-aware; the key stops working then")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="Identifies the key in logs; not usable as a credential")
    scopes: list[str]
    knowledge_base_ids: list[uuid.UUID] | None = Field(description="The knowledge bases it may use; null: all")
    rate_limit_per_minute: int | None
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="The key itself: shown once, store it now")


class TenantFields(Body):
    plan: str | None = Field(default=None, min_length=1, max_length=100)
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    monthly_query_quota: int | None = Field(default=None, ge=0)
    monthly_ingest_bytes_quota: int | None = Field(default=None, ge=0)
    max_document_bytes: int | None = Field(default=None, ge=1)
    allow_registration: bool | None = None
    registration_role: Literal["member", "readonly"] | None = None
    cache_enabled: bool | None = None


class TenantCreate(TenantFields):
    name: str = Field(min_length=1, max_length=200)


class TenantUpdate(TenantFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["active", "suspended"] | None = None


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    plan: str
    rate_limit_per_minute: int | None
    monthly_query_quota: int | None
    monthly_ingest_bytes_quota: int | None
    max_document_bytes: int | None
    allow_registration: bool
    registration_role: str
    cache_enabled: bool
    created_at: datetime | None


class TenantCreated(TenantOut):
    api_key: str = Field(description="The tenant's first admin API key: shown once")


class UsageOut(BaseModel):
    period: date
    queries: int
    ingest_bytes: int


class LimitsOut(BaseModel):
    plan: str
    rate_limit_per_minute: int
    monthly_query_quota: int | None
    monthly_ingest_bytes_quota: int | None
    max_document_bytes: int


class MyTenantOut(BaseModel):
    id: uuid.UUID
    name: str
    limits: LimitsOut
    usage: UsageOut


# --- feedback and analytics -------------------------------------------------------------------------------


class FeedbackIn(Body):
    query_id: uuid.UUID
    rating: float = Field(description="+1 or -1, or a score from 0 (bad) to 1 (good)")
    comment: str | None = Field(default=None, max_length=4000)
    chunk_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=100, description="The sources this rating is about (among the answer's)"
    )


class FeedbackOut(BaseModel):
    feedback_id: uuid.UUID
    query_id: uuid.UUID
    score: float


class FeedbackExport(BaseModel):
    queries: list[dict[str, Any]]
    qrels: list[dict[str, Any]]


class KnowledgeBaseCreate(Body):
    name: str = Field(
        min_length=1, max_length=MAX_NAME_CHARS, description="Unique among the tenant's; not shaped like an id"
    )
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    settings: KnowledgeBaseSettings = Field(
        default_factory=KnowledgeBaseSettings, description="Its own retrieval settings; unset: the service's"
    )


class KnowledgeBasePatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    settings: KnowledgeBaseSettings | None = Field(
        default=None,
        description="The settings given replace the current ones; a setting set to null follows the service's again",
    )


class DeletionProgress(BaseModel):
    documents_total: int = Field(description="Documents it had when the deletion began")
    documents_deleted: int
    requested_at: datetime | None


class KnowledgeBaseOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    default: bool = Field(description="The tenant's default: used when a request names none")
    status: Literal["active", "deleting"]
    settings: dict[str, Any] = Field(description="Its own settings; those not listed follow the service's")
    embedding_model: str
    embedding_dim: int
    vector_backend: str
    chunks: int
    version: int = Field(description="Grows with every change to its documents or settings")
    created_at: datetime | None
    deletion: DeletionProgress | None = Field(default=None, description="While it is being deleted")


# --- conversations ----------------------------------------------------------------------------------------

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS)]
KnowledgeBaseName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_KNOWLEDGE_BASE_CHARS)
]


class ConversationCreate(Body):
    title: Title | None = None
    knowledge_bases: list[KnowledgeBaseName] = Field(
        default_factory=list,
        max_length=MAX_KNOWLEDGE_BASES,
        description=f"Knowledge-base names, stored and returned as given (at most {MAX_KNOWLEDGE_BASES}, each 1 to "
        f"{MAX_KNOWLEDGE_BASE_CHARS} characters, distinct)",
    )

    @field_validator("knowledge_bases")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("names a knowledge base twice")
        return names


class ConversationOut(BaseModel):
    id: uuid.UUID
    title: str | None
    knowledge_bases: list[str]
    message_count: int = Field(description="Messages so far, questions and answers (CONVERSATION_MAX_MESSAGES at most)")
    created_at: datetime | None
    updated_at: datetime | None = Field(description="The last message (or the creation): retention counts from it")


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    ord: int = Field(description="The message's place in the conversation, from 0")
    role: Literal["user", "assistant"]
    content: str = Field(description="The question as asked, or the answer")
    standalone_question: str | None = Field(
        default=None, description="User messages: the question that was searched, made standalone from earlier ones"
    )
    rewrite: str | None = Field(
        default=None,
        description="User messages: how the standalone question was made: `none` (searched as asked) or `offline` "
        "(terms of the earlier questions carried over)",
    )
    query_id: uuid.UUID | None = Field(
        default=None, description="Assistant messages: the answer's id in the query log, for POST /v1/feedback"
    )
    citations: list[Citation] = Field(
        default_factory=list,
        description="Assistant messages: the answer's sources, those of documents the reader can no longer read "
        "left out",
    )
    withheld: bool = Field(
        default=False,
        description="Assistant messages: the answer cited documents the reader can no longer read, so its text is "
        "replaced by a notice",
    )
    mode: str | None = None
    model: str | None = None
    usage: Usage | None = None
    created_at: datetime | None


class ConversationDetail(ConversationOut):
    messages: list[MessageOut] = Field(description="Oldest first")


class ConversationMessageIn(Body):
    content: str = Field(min_length=1, description="The question; limited by MAX_QUERY_CHARS")
    top_k: int | None = Field(default=None, ge=1, description="Sources to cite; limited by MAX_TOP_K")
    filters: dict[str, Any] | None = Field(default=None, description='Metadata filters, e.g. {"lang": ["en", "de"]}')
    stream: bool = False
    cache: bool = Field(default=True, description="false skips the answer cache for this request")


class ConversationAnswer(Answer):
    """The answer as POST /v1/query gives it, and where it belongs."""

    conversation_id: uuid.UUID
    standalone_question: str = Field(description="What was searched: the question made standalone from earlier ones")


# --- search -----------------------------------------------------------------------------------------------


class SearchRequest(Body):
    query: str = Field(min_length=1, description="What to search for; limited by MAX_QUERY_CHARS")
    knowledge_bases: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REFS,
        description="Knowledge bases to search (ids or names), fused into one ranking; none: the tenant's default",
    )
    top_k: int | None = Field(
        default=None, ge=1, description="Passages to return; the knowledge base's own default, else DEFAULT_TOP_K"
    )
    filters: dict[str, Any] | None = Field(default=None, description='Metadata filters, e.g. {"lang": ["en", "de"]}')


class SearchResponse(BaseModel):
    query_id: uuid.UUID = Field(description="The search's entry in the query log: rate passages by POST /v1/feedback")
    passages: list[Passage] = Field(description="Best first, after reranking, numbered as an answer would cite them")


class GroupCreate(Body):
    name: str = Field(min_length=1, max_length=GROUP_NAME_CHARS)


class GroupRename(GroupCreate):
    pass


class GroupMembers(Body):
    user_ids: list[uuid.UUID] = Field(min_length=1, description="The tenant's users, by id")


class GroupOut(BaseModel):
    group_id: uuid.UUID
    name: str
    created_at: datetime | None
    members: list[uuid.UUID] = Field(description="Its users' ids")
